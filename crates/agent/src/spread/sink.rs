//! What a spread task's runner reports: its holder and epoch in the agent's view (the API's `spread` section and
//! `leasehold_task_held`).

use std::sync::Arc;

use leasehold_lease::Leadership;

use crate::runner::Sink;
use crate::view::View;

/// The sink of one spread task.
pub struct SpreadSink {
    /// The task name.
    pub task: String,
    /// Published state.
    pub view: Arc<View>,
}

impl Sink for SpreadSink {
    fn following(&self, _holder: Option<String>) {}

    fn cooling_down(&self, _holder: Option<String>) {}

    fn leading(&self, l: &Leadership) {
        tracing::info!(task = %self.task, epoch = l.epoch(), "holding spread task");
        self.view.set_spread_epoch(&self.task, Some(l.epoch()));
    }

    fn stopped_leading(&self, l: &Leadership, why: &str) {
        tracing::info!(task = %self.task, epoch = l.epoch(), why, "released spread task");
        self.view.set_spread_epoch(&self.task, None);
    }
}
