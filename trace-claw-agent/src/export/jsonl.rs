//! The `jsonl` exporter: one [`DailyJsonl`] for samples and one for process events.

use std::path::{Path, PathBuf};

use trace_claw_common::event::ProcessEvent;
use trace_claw_common::sample::MetricSample;

use super::{ExportError, Exporter};
use crate::daily_jsonl::{DailyJsonl, PROCESS_EVENTS_PREFIX, RESOURCES_PREFIX};

/// The local sink: samples to `resources-*.jsonl`, process events to `process-events-*.jsonl`.
pub struct JsonlExporter {
    dir: PathBuf,
    resources: DailyJsonl,
    process_events: DailyJsonl,
}

impl JsonlExporter {
    /// Writes under `dir`.
    pub fn new(dir: &Path) -> Result<Self, ExportError> {
        Ok(Self {
            dir: dir.to_owned(),
            resources: DailyJsonl::new(dir, RESOURCES_PREFIX)?,
            process_events: DailyJsonl::new(dir, PROCESS_EVENTS_PREFIX)?,
        })
    }
}

impl Exporter for JsonlExporter {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    fn export(
        &mut self,
        samples: &[MetricSample],
        events: &[ProcessEvent],
    ) -> Result<(), ExportError> {
        for s in samples {
            self.resources.append(s.timestamp, s)?;
        }
        for e in events {
            self.process_events.append(e.timestamp, e)?;
        }
        let resources = self.resources.flush();
        self.process_events.flush()?;
        resources
    }

    fn shutdown(&mut self) -> Result<(), ExportError> {
        let resources = self.resources.flush();
        self.process_events.flush()?;
        resources
    }
}
