//! The host name, as `$ZU(110)` and `$SYSTEM.INetInfo.LocalHostName()` report it.

/// `/proc/sys/kernel/hostname`, else `$HOSTNAME`, else `gethostname(2)`, else `localhost`.
pub fn local_host_name() -> String {
    if let Ok(s) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let s = s.trim();
        if !s.is_empty() {
            return s.to_string();
        }
    }
    if let Ok(s) = std::env::var("HOSTNAME") {
        if !s.is_empty() {
            return s;
        }
    }
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length and gethostname writes at most that.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        if len > 0 {
            return String::from_utf8_lossy(&buf[..len]).into_owned();
        }
    }
    "localhost".to_string()
}
