//! The DNS wire format, as little of it as a stub resolver needs (RFC 1035 §4): one
//! question out, the A/AAAA records of the answer section back. Pure: no I/O.
//!
//! Every read is bounds-checked; a malformed answer is an error, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest name on the wire (RFC 1035 §2.3.4), and longest label.
const MAX_NAME: usize = 255;
const MAX_LABEL: usize = 63;
/// Most answer records looked at: far more than any real answer for one name.
const MAX_ANSWERS: u16 = 64;

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// Why an answer gave no addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The addresses found (may be empty: the name exists, without this record type).
    Addresses(Vec<IpAddr>),
    /// NXDOMAIN: the server says the name does not exist.
    NoSuchName,
}

/// Encodes a standard recursive query for `name`.
pub fn query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    let name = name.trim_end_matches('.');
    if name.is_empty() || name.len() > MAX_NAME - 2 {
        return Err(format!("{name:?} is not a valid host name (1-253 characters)"));
    }
    let mut out = Vec::with_capacity(18 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes()); // RD: recursion desired
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // one question
    for label in name.split('.') {
        if label.is_empty() || label.len() > MAX_LABEL {
            return Err(format!("{name:?} is not a valid host name (empty label or one over {MAX_LABEL} characters)"));
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or("truncated DNS answer")?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Skips a possibly compressed name (its text is not needed: the question is ours and
    /// CNAME chains are resolved by the server into the same answer).
    fn skip_name(&mut self) -> Result<(), String> {
        for _ in 0..MAX_NAME {
            let len = self.take(1)?[0];
            match len {
                0 => return Ok(()),
                l if l & 0xC0 == 0xC0 => {
                    self.take(1)?; // a pointer ends the name here
                    return Ok(());
                }
                l if l as usize <= MAX_LABEL => {
                    self.take(l as usize)?;
                }
                _ => return Err("malformed name in DNS answer".into()),
            }
        }
        Err("name too long in DNS answer".into())
    }
}

/// Decodes the answer to the query `id` of type `qtype`.
pub fn parse(id: u16, qtype: u16, buf: &[u8]) -> Result<Answer, String> {
    let mut r = Reader { buf, pos: 0 };
    if r.u16()? != id {
        return Err("DNS answer for another query".into());
    }
    let flags = r.u16()?;
    if flags & 0x8000 == 0 {
        return Err("DNS message is not an answer".into());
    }
    match flags & 0x000F {
        0 => {}
        3 => return Ok(Answer::NoSuchName),
        2 => return Err("the name server failed (SERVFAIL)".into()),
        5 => return Err("the name server refused the query".into()),
        code => return Err(format!("the name server answered with error code {code}")),
    }
    let questions = r.u16()?;
    let answers = r.u16()?.min(MAX_ANSWERS);
    r.take(4)?; // authority and additional counts: not read
    for _ in 0..questions.min(4) {
        r.skip_name()?;
        r.take(4)?;
    }
    let mut out = Vec::new();
    for _ in 0..answers {
        r.skip_name()?;
        let rtype = r.u16()?;
        let class = r.u16()?;
        r.take(4)?; // TTL: nothing is cached
        let len = r.u16()? as usize;
        let data = r.take(len)?;
        if class != CLASS_IN || rtype != qtype {
            continue; // CNAMEs and the like: the addresses follow
        }
        match (rtype, data.len()) {
            (TYPE_A, 4) => out.push(IpAddr::V4(Ipv4Addr::new(data[0], data[1], data[2], data[3]))),
            (TYPE_AAAA, 16) => {
                let b: [u8; 16] = data.try_into().expect("length checked");
                out.push(IpAddr::V6(Ipv6Addr::from(b)));
            }
            _ => return Err(format!("malformed address record of type {rtype} ({len} bytes)")),
        }
    }
    Ok(Answer::Addresses(out))
}

/// Encodes an answer to `query` (tests' DNS responder; shaped like a real server's).
#[cfg(test)]
pub fn answer(query: &[u8], rcode: u8, addresses: &[IpAddr]) -> Vec<u8> {
    let qtype = u16::from_be_bytes([query[query.len() - 4], query[query.len() - 3]]);
    let matching: Vec<&IpAddr> = addresses
        .iter()
        .filter(|a| matches!((a, qtype), (IpAddr::V4(_), TYPE_A) | (IpAddr::V6(_), TYPE_AAAA)))
        .collect();
    let mut out = query[..2].to_vec();
    out.extend_from_slice(&(0x8180u16 | rcode as u16).to_be_bytes());
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&(matching.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&query[12..]);
    for a in matching {
        out.extend_from_slice(&[0xC0, 12]); // pointer to the question's name
        out.extend_from_slice(&qtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&600u32.to_be_bytes());
        match a {
            IpAddr::V4(v4) => {
                out.extend_from_slice(&4u16.to_be_bytes());
                out.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                out.extend_from_slice(&16u16.to_be_bytes());
                out.extend_from_slice(&v6.octets());
            }
        }
    }
    out
}
