//! The covid model's state as bytes, for checkpoints (`--checkpoint-every`,
//! `--resume`): this rank's agents, the flag byte of every agent, the week
//! and month counters, the behaviour's memory, the tallies and the pending
//! outcomes. What can be derived (the active list, the day's marks) is not
//! written; what can be checked against the agents (the tallies, their own
//! flags) is checked before anything is replaced.

use super::{each_count, Covid, Outcomes, Tally, D, E, I};

/// The first bytes of a covid state.
const MAGIC: &[u8; 8] = b"covid\0\0\x01";

/// Reads what [`Covid::save`] wrote, in order; every read names what was
/// cut short.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    pub(super) fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "the state is cut short in {what} (byte {} of {})",
                    self.at,
                    self.bytes.len()
                )
            })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    pub(super) fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }

    pub(super) fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }

    /// A count of items of `size` bytes each, refused when the rest of the
    /// state cannot hold them (so a damaged count allocates nothing).
    pub(super) fn count(&mut self, size: usize, what: &str) -> Result<usize, String> {
        let k = self.u64(what)?;
        let left = (self.bytes.len() - self.at) as u64;
        if k.saturating_mul(size.max(1) as u64) > left {
            return Err(format!(
                "the state is cut short in {what}: {k} items do not fit in the {left} bytes left"
            ));
        }
        Ok(k as usize)
    }

    fn done(&self) -> Result<(), String> {
        if self.at != self.bytes.len() {
            return Err(format!("{} bytes follow the state", self.bytes.len() - self.at));
        }
        Ok(())
    }
}

pub(super) fn put_u64(out: &mut Vec<u8>, x: u64) {
    out.extend_from_slice(&x.to_le_bytes());
}

impl Covid {
    /// Append this rank's state to `out` (see the module docs).
    pub(super) fn save(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(MAGIC);
        put_u64(out, self.part.lo() as u64);
        put_u64(out, self.stage.len() as u64);
        put_u64(out, self.flags.len() as u64);
        put_u64(out, self.seed);
        out.extend_from_slice(&self.stage);
        out.extend_from_slice(&self.timer);
        self.infected_at
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        out.extend(self.isolating.iter().map(|&x| x as u8));
        out.extend(self.working.iter().map(|&x| x as u8));
        out.extend_from_slice(&self.weeks_worked);
        out.extend_from_slice(&self.flags);
        out.push(self.weeks_in_month);
        put_u64(out, self.weeks_decided as u64);
        self.week_cases.iter().for_each(|&x| put_u64(out, x));
        put_u64(out, self.weekly.len() as u64);
        self.weekly.iter().flatten().for_each(|&x| put_u64(out, x));
        self.pressure
            .iter()
            .chain(&self.unemployment)
            .for_each(|x| put_u64(out, x.to_bits()));
        let (mut tally, mut today) = (self.tally, self.today);
        each_count(&mut tally, &mut today, &mut |x| put_u64(out, *x));
        let (mut tally, mut today) = self.city;
        each_count(&mut tally, &mut today, &mut |x| put_u64(out, *x));
        self.pending.save(out);
    }

    /// Replace the state by `bytes` from [`Self::save`] for the same part
    /// of the same population; the state is unchanged on an error.
    pub(super) fn load(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut r = Reader::new(bytes);
        if r.take(MAGIC.len(), "its header")? != MAGIC {
            return Err("the state is not the covid model's".into());
        }
        let (lo, n, total) = (r.u64("the range")?, r.u64("the range")?, r.u64("the population")?);
        if lo != self.part.lo() as u64 || n != self.stage.len() as u64 || total != self.flags.len() as u64 {
            return Err(format!(
                "the state holds agents {lo}..{} of {total}, this process owns {}..{} of {}",
                lo.saturating_add(n),
                self.part.lo(),
                self.part.hi(),
                self.flags.len()
            ));
        }
        let n = n as usize;
        let seed = r.u64("the seed")?;
        let stage = r.take(n, "the stages")?.to_vec();
        let timer = r.take(n, "the timers")?.to_vec();
        let infected_at: Vec<i32> = r
            .take(4 * n, "the infection days")?
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let isolating: Vec<bool> = r.take(n, "isolation")?.iter().map(|&b| b != 0).collect();
        let working: Vec<bool> = r.take(n, "work")?.iter().map(|&b| b != 0).collect();
        let weeks_worked = r.take(n, "the weeks worked")?.to_vec();
        let flags = r.take(self.flags.len(), "the flags")?.to_vec();
        let weeks_in_month = r.take(1, "the month")?[0];
        let weeks_decided = r.u64("the weeks decided")? as u32;
        let mut week_cases = [0u64; 5];
        for x in &mut week_cases {
            *x = r.u64("the week's cases")?;
        }
        let weeks = r.count(40, "the weekly cases")?;
        let mut weekly = Vec::with_capacity(weeks);
        for _ in 0..weeks {
            let mut w = [0u64; 5];
            for x in &mut w {
                *x = r.u64("the weekly cases")?;
            }
            weekly.push(w);
        }
        let mut floats = [0.0f64; 10];
        for x in &mut floats {
            *x = f64::from_bits(r.u64("the behaviour's memory")?);
        }
        let mut counts = |what: &str| -> Result<(Tally, Outcomes), String> {
            let (mut t, mut o) = (Tally::default(), Outcomes::default());
            let mut failed = None;
            each_count(&mut t, &mut o, &mut |x| match r.u64(what) {
                Ok(v) => *x = v,
                Err(e) => {
                    failed.get_or_insert(e);
                }
            });
            failed.map_or(Ok((t, o)), Err)
        };
        let (tally, today) = counts("the tallies")?;
        let city = counts("the whole population's tallies")?;
        let pending = super::Pending::load(&mut r, self.part.lo(), self.part.hi())?;
        r.done()?;

        // Checked against the agents before anything is replaced.
        let agent = |x: usize| self.part.lo() as usize + x;
        if let Some(x) = stage.iter().position(|&s| s > D) {
            return Err(format!("agent {} has stage code {}", agent(x), stage[x]));
        }
        if let Some(x) = (0..n).position(|x| matches!(stage[x], E | I) && timer[x] == 0) {
            return Err(format!("agent {} is in stage {} with no time left", agent(x), stage[x]));
        }
        let own = |x: usize| stage[x] | (isolating[x] as u8) << 3 | (working[x] as u8) << 4 | self.fixed.age[x] << 5;
        if let Some(x) = (0..n).position(|x| flags[agent(x)] != own(x)) {
            return Err(format!("agent {}'s flags do not match its state", agent(x)));
        }
        let mut recount = Tally::default();
        for x in 0..n {
            let b = self.fixed.borough[x] as usize;
            recount.count(stage[x], b, isolating[x], self.fixed.employed[x], working[x]);
        }
        recount.new_inf = tally.new_inf;
        let words = |t: &Tally| {
            let (mut t, mut o) = (*t, Outcomes::default());
            let mut v = Vec::new();
            each_count(&mut t, &mut o, &mut |x| v.push(*x));
            v
        };
        if words(&recount) != words(&tally) {
            return Err("the tallies are not those of its agents".into());
        }

        self.seed = seed;
        self.active = (0..n)
            .filter(|&x| matches!(stage[x], E | I))
            .map(|x| agent(x) as u32)
            .collect();
        self.stage = stage;
        self.timer = timer;
        self.infected_at = infected_at;
        self.isolating = isolating;
        self.working = working;
        self.weeks_worked = weeks_worked;
        self.flags = flags;
        self.changed.clear();
        self.weeks_in_month = weeks_in_month;
        self.weeks_decided = weeks_decided;
        self.week_cases = week_cases;
        self.weekly = weekly;
        self.pressure = std::array::from_fn(|b| floats[b]);
        self.unemployment = std::array::from_fn(|b| floats[5 + b]);
        self.tally = tally;
        self.today = today;
        self.city = city;
        self.pending = pending;
        Ok(())
    }
}
