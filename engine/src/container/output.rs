//! Children's output, line by line with a prefix, onto the supervisor's own stdout or
//! stderr: `docker logs` then shows one stream in which every line says who wrote it.

use std::io::{Read, Write};

/// A line longer than this is cut into pieces of this size (a child printing without
/// newlines must not make the supervisor buffer without end).
pub const MAX_LINE: usize = 16 * 1024;

/// Copies `from` to `to` until end of file, putting `prefix` before every line. Each line
/// is written with one `write_all` under the lock, so lines of two children never mix.
pub fn copy_prefixed(mut from: impl Read, to: impl Fn() -> Box<dyn Write>, prefix: &str) {
    let mut pending: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match from.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        while let Some(end) = line_end(&pending) {
            emit(&to, prefix, &pending[..end]);
            pending.drain(..end);
        }
    }
    if !pending.is_empty() {
        pending.push(b'\n');
        emit(&to, prefix, &pending);
    }
}

/// Where the first line of `buf` ends (after its newline), or `MAX_LINE` when it is that
/// long without one.
fn line_end(buf: &[u8]) -> Option<usize> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) if i < MAX_LINE => Some(i + 1),
        _ if buf.len() >= MAX_LINE => Some(MAX_LINE),
        _ => None,
    }
}

fn emit(to: &impl Fn() -> Box<dyn Write>, prefix: &str, line: &[u8]) {
    let mut out = Vec::with_capacity(prefix.len() + line.len() + 1);
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(line);
    if !line.ends_with(b"\n") {
        out.push(b'\n');
    }
    // Nowhere to report a failed write to our own output.
    let _ = to().write_all(&out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn run(input: &[u8]) -> Vec<u8> {
        let sink = Arc::new(Mutex::new(Vec::new()));
        struct W(Arc<Mutex<Vec<u8>>>);
        impl Write for W {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let s = sink.clone();
        copy_prefixed(input, move || Box::new(W(s.clone())), "[engine] ");
        let out = sink.lock().unwrap().clone();
        out
    }

    #[test]
    fn every_line_gets_the_prefix() {
        assert_eq!(run(b"one\ntwo\nlast"), b"[engine] one\n[engine] two\n[engine] last\n");
        assert_eq!(run(b""), b"");
    }

    #[test]
    fn a_line_without_end_is_cut_at_the_bound() {
        let input = vec![b'x'; MAX_LINE * 2 + 10];
        let out = run(&input);
        let lines: Vec<&[u8]> = out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.len() <= "[engine] ".len() + MAX_LINE));
    }
}
