//! The one place where an agent's step writes to another agent.
//!
//! A phase reads the state before the step and writes only its own agents'
//! next state, except for marks like "infected today" that a source sets on
//! a target. Every such write goes through [`Marks::mark`]: setting a mark is
//! idempotent and the order of marks does not matter, so a phase may run on
//! any number of threads, and a partitioned run can route the marks aimed at
//! another process's agents through this one door.

use std::sync::atomic::{AtomicBool, Ordering};

/// One mark per agent, set by other agents during a phase and taken by the
/// agent itself in a later phase.
#[derive(Debug, Default)]
pub struct Marks {
    flags: Vec<AtomicBool>,
}

impl Marks {
    /// `n` agents, none marked.
    pub fn new(n: usize) -> Marks {
        Marks {
            flags: (0..n).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// Number of agents.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// True for no agents.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// Is `agent` marked?
    #[inline]
    pub fn is_marked(&self, agent: usize) -> bool {
        self.flags[agent].load(Ordering::Relaxed)
    }

    /// Mark `agent` (another agent's write; see the module docs).
    #[inline]
    pub fn mark(&self, agent: usize) {
        self.flags[agent].store(true, Ordering::Relaxed);
    }

    /// Whether `agent` was marked, clearing the mark. A plain load first:
    /// most agents are not marked, and a swap would be a locked
    /// read-modify-write on every one of them.
    #[inline]
    pub fn take(&self, agent: usize) -> bool {
        let marked = self.flags[agent].load(Ordering::Relaxed);
        if marked {
            self.flags[agent].store(false, Ordering::Relaxed);
        }
        marked
    }
}

impl Clone for Marks {
    /// Marks are clear between steps, so a copy starts clear.
    fn clone(&self) -> Marks {
        Marks::new(self.flags.len())
    }
}
