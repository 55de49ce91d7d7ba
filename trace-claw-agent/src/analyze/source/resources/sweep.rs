//! The stat windows that hold a sample's time, found by sweeping the time axis: resource
//! files are time-ordered, so a chunk's samples come in order and each window is entered once
//! and left once. A sample costs the number of windows open at its time, not the number of
//! windows (one per session: thousands in a month of a busy gateway). A sample earlier than
//! the one before it restarts the sweep, so unordered files stay correct, only slower.

/// The windows open at the last time asked about, for one chunk's samples.
#[derive(Debug, Clone, Default)]
pub struct Sweep {
    /// Window indices by start time (built on first use).
    by_start: Vec<usize>,
    /// How many of `by_start` have started.
    entered: usize,
    /// Started windows that had not ended at the last time asked about.
    open: Vec<usize>,
    /// The last time asked about.
    last: i64,
}

impl Sweep {
    /// The indices of the `windows` (`[start, end]`, inclusive) holding `t`, in no particular
    /// order. `windows` must be the same slice on every call.
    pub fn at(&mut self, windows: &[(i64, i64)], t: i64) -> &[usize] {
        if self.by_start.len() != windows.len() || t < self.last {
            self.restart(windows);
        }
        self.last = t;
        while let Some(&w) = self.by_start.get(self.entered) {
            if windows[w].0 > t {
                break;
            }
            self.open.push(w);
            self.entered += 1;
        }
        self.open.retain(|&w| windows[w].1 >= t);
        &self.open
    }

    fn restart(&mut self, windows: &[(i64, i64)]) {
        self.by_start = (0..windows.len()).collect();
        self.by_start.sort_by_key(|&w| windows[w].0);
        self.entered = 0;
        self.open.clear();
        self.last = i64::MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holding(windows: &[(i64, i64)], t: i64) -> Vec<usize> {
        let mut v: Vec<usize> = (0..windows.len())
            .filter(|&w| windows[w].0 <= t && t <= windows[w].1)
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn finds_the_same_windows_as_a_scan_in_and_out_of_order() {
        let windows = [(0, 100), (10, 20), (15, 15), (30, 60), (5, 40), (200, 300)];
        let mut sweep = Sweep::default();
        for t in (-5..320).chain([50, 12, 15, 250, 0]) {
            let mut got = sweep.at(&windows, t).to_vec();
            got.sort_unstable();
            assert_eq!(got, holding(&windows, t), "t = {t}");
        }
    }
}
