//! The session's clock: real time with the paused stretches cut out.
//!
//! While the user pauses, the workers are stopped (SIGSTOP), so the paused
//! stretch belongs to no run: every time the app takes in (record times,
//! start requests, now) is moved onto this clock first. The tally and the
//! timeline then see a run that never paused, and no figure needs to know.

/// The user's pauses of one session, the last maybe still going.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionClock {
    pauses: Vec<(u64, Option<u64>)>,
}

impl SessionClock {
    pub fn paused(&self) -> bool {
        self.pauses.last().is_some_and(|(_, to)| to.is_none())
    }

    pub fn pause(&mut self, now: u64) {
        if !self.paused() {
            self.pauses.push((now, None));
        }
    }

    pub fn resume(&mut self, now: u64) {
        if let Some((from, to @ None)) = self.pauses.last_mut() {
            *to = Some(now.max(*from));
        }
    }

    /// Real time `t` on this clock. A moment inside a pause is the pause's
    /// start: nothing happened while the workers were stopped.
    pub fn at(&self, t: u64) -> u64 {
        let paused: u64 =
            self.pauses.iter().map(|&(from, to)| t.min(to.unwrap_or(u64::MAX)).saturating_sub(from)).sum();
        t.saturating_sub(paused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paused_stretches_are_cut_out() {
        let mut clock = SessionClock::default();
        clock.pause(500);
        assert!(clock.paused());
        assert_eq!(clock.at(700), 500, "inside a pause the clock stands still");
        clock.resume(900);
        assert_eq!(clock.at(1_000), 600);
        assert_eq!(clock.at(400), 400, "before the pause nothing moves");
    }
}
