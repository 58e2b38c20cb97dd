//! Output for people and for CI: step lines and progress bars on stderr for a person
//! (bars only on a terminal), nothing but the final JSON document on stdout with `--json`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone, Copy, Debug, Default)]
pub struct Ui {
    pub json: bool,
}

impl Ui {
    /// A step line ("MIRRORB: copy COMPANY ..."), on stderr so stdout stays parseable.
    pub fn step(&self, text: &str) {
        if !self.json {
            eprintln!("{text}");
        }
    }

    /// A byte-progress bar; hidden with --json and when stderr is not a terminal.
    pub fn bytes_bar(&self, total: u64, message: String) -> ProgressBar {
        let target = if self.json { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                .expect("a literal template")
                .progress_chars("=> "),
        );
        bar.set_message(message);
        bar
    }

    /// A spinner for a wait on a condition.
    pub fn spinner(&self, message: String) -> ProgressBar {
        let target = if self.json { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_message(message);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    }
}
