//! Peak memory of the server under load, as the kernel reports it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::server::status_field;

/// Watches a process's peak resident set while something runs: polls `VmRSS` every few
/// milliseconds, and also resets and reads the kernel's own high-water mark (`VmHWM`, reset
/// through `/proc/<pid>/clear_refs`) so a short spike between polls is not missed.
pub struct PeakRss {
    pid: u32,
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    poller: Option<std::thread::JoinHandle<()>>,
    hwm_reset: bool,
}

impl PeakRss {
    /// Starts watching `pid`.
    pub fn start(pid: u32) -> Self {
        let hwm_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(status_field(pid, "VmRSS").unwrap_or(0)));
        let poller = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(rss) = status_field(pid, "VmRSS") {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Self {
            pid,
            stop,
            peak,
            poller: Some(poller),
            hwm_reset,
        }
    }

    /// Stops watching; the peak in KiB (`None` when nothing could be read).
    pub fn finish(mut self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(poller) = self.poller.take() {
            let _ = poller.join();
        }
        let mut peak = self.peak.load(Ordering::Relaxed);
        if self.hwm_reset
            && let Some(hwm) = status_field(self.pid, "VmHWM")
        {
            peak = peak.max(hwm);
        }
        (peak > 0).then_some(peak)
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
