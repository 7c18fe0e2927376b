//! Large-array allocation hints.

/// Allocate a zeroed vector of `len` elements and ask the kernel to back it
/// with transparent huge pages. Random reads over hundreds of megabytes (a
/// CSR target array, per-agent state) miss the TLB on nearly every access
/// with 4 KiB pages; with 2 MiB pages they mostly do not. On systems where
/// THP is off or not in `madvise` mode the hint is harmless.
pub fn huge_zeroed<T: Copy + Default>(len: usize) -> Vec<T> {
    let v = vec![T::default(); len];
    advise_huge(&v);
    v
}

/// Hint that `v`'s memory should use transparent huge pages.
pub fn advise_huge<T>(v: &[T]) {
    const HUGE: usize = 2 << 20;
    let bytes = std::mem::size_of_val(v);
    if bytes < 4 * HUGE {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let start = v.as_ptr() as usize;
        let aligned = (start + HUGE - 1) & !(HUGE - 1);
        let end = (start + bytes) & !(HUGE - 1);
        if end > aligned {
            // SAFETY: the range lies inside `v`'s allocation; MADV_HUGEPAGE
            // only changes how the kernel backs the pages, never their contents.
            unsafe {
                libc::madvise(aligned as *mut libc::c_void, end - aligned, libc::MADV_HUGEPAGE);
            }
        }
    }
}
