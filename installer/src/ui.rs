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

    /// Where bars draw: stderr for a person (indicatif draws nothing when it is no
    /// terminal), nowhere with --json.
    fn draw_target(&self) -> ProgressDrawTarget {
        if self.json {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        }
    }

    /// A byte-progress bar (a database copy): bytes done of the total, the rate, the time
    /// taken and the time left; hidden with --json and when stderr is not a terminal.
    pub fn bytes_bar(&self, total: u64, message: String) -> ProgressBar {
        bytes_bar_on(self.draw_target(), total, message)
    }

    /// A spinner for a wait on a condition: what it waits for and for how long so far.
    pub fn spinner(&self, message: String) -> ProgressBar {
        let bar = spinner_on(self.draw_target(), message);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    }
}

/// `{bytes}` and `{total_bytes}` in binary units (`1.50 GiB`), `{elapsed}` as `12s`.
const BYTES_TEMPLATE: &str =
    "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {elapsed} (about {eta} left)";
const SPINNER_TEMPLATE: &str = "{spinner} {msg} ({elapsed})";
const SPINNER_FRAMES: &str = "|/-\\ ";

fn bytes_bar_on(target: ProgressDrawTarget, total: u64, message: String) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), target);
    bar.set_style(ProgressStyle::with_template(BYTES_TEMPLATE).expect("a literal template").progress_chars("=> "));
    bar.set_message(message);
    bar
}

fn spinner_on(target: ProgressDrawTarget, message: String) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(
        ProgressStyle::with_template(SPINNER_TEMPLATE).expect("a literal template").tick_chars(SPINNER_FRAMES),
    );
    bar.set_message(message);
    bar
}

/// Switch to the terminal's alternate screen and hide the cursor.
const ENTER_ALT_SCREEN: &[u8] = b"\x1b[?1049h\x1b[?25l";
/// Show the cursor and go back to the normal screen, as it was before.
const LEAVE_ALT_SCREEN: &[u8] = b"\x1b[?25h\x1b[?1049l";

/// The alternate screen for a redrawing view (`status --watch`), as `watch` and `top` use
/// it: the shell's screen comes back as it was when the guard drops, and on Ctrl-C (or
/// SIGTERM, SIGHUP), which otherwise end the process without running any drop.
pub struct AltScreen {
    _private: (),
}

extern "C" fn leave_and_exit(_signal: libc::c_int) {
    // Only async-signal-safe calls here: write(2) and _exit(2).
    // SAFETY: the buffer is a static byte string of the given length.
    unsafe {
        libc::write(1, LEAVE_ALT_SCREEN.as_ptr().cast(), LEAVE_ALT_SCREEN.len());
        libc::_exit(130);
    }
}

impl AltScreen {
    pub fn enter() -> AltScreen {
        use std::io::Write;
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: the handler calls only async-signal-safe functions.
            unsafe {
                libc::signal(signal, leave_and_exit as extern "C" fn(libc::c_int) as libc::sighandler_t);
            }
        }
        let mut out = std::io::stdout();
        let _ = out.write_all(ENTER_ALT_SCREEN);
        let _ = out.flush();
        AltScreen { _private: () }
    }

    /// Replaces the screen's contents with `text`.
    pub fn draw(&self, text: &str) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        // Home, then each line cleared to its end, then everything below cleared: no
        // flicker of a whole-screen clear.
        let body = text.replace('\n', "\x1b[K\n");
        let _ = write!(out, "\x1b[H{body}\x1b[J");
        let _ = out.flush();
    }
}

impl Drop for AltScreen {
    fn drop(&mut self) {
        use std::io::Write;
        let mut out = std::io::stdout();
        let _ = out.write_all(LEAVE_ALT_SCREEN);
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A terminal that keeps everything drawn.
    #[derive(Debug, Default, Clone)]
    struct Screen(Arc<Mutex<String>>);

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            200
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn shown(screen: &Screen) -> String {
        screen.0.lock().unwrap().clone()
    }

    #[test]
    fn the_spinner_shows_what_it_waits_for_and_for_how_long() {
        let screen = Screen::default();
        let bar = spinner_on(ProgressDrawTarget::term_like(Box::new(screen.clone())), "waiting for a primary".into());
        bar.tick();
        let line = shown(&screen);
        assert!(line.contains("waiting for a primary (0s)"), "{line:?}");
        assert!(!line.contains("0/0"), "{line:?}");
    }

    #[test]
    fn a_copy_shows_bytes_of_the_total_and_the_rate() {
        let screen = Screen::default();
        let bar =
            bytes_bar_on(ProgressDrawTarget::term_like(Box::new(screen.clone())), 0, "MIRRORB: copy COMPANY".into());
        bar.set_length(3 << 30);
        bar.set_position(3 << 29);
        bar.tick();
        let line = shown(&screen);
        assert!(line.starts_with("MIRRORB: copy COMPANY ["), "{line:?}");
        assert!(line.contains("1.50 GiB/3.00 GiB"), "{line:?}");
        assert!(line.contains("/s"), "{line:?}");
    }
}
