//! A record, and its body in RECORD and OUTPUT frames (docs/protocol.md, "The data plane"):
//!
//! ```text
//! i64 timestamp | i32 header count | (i32 key length, key, i32 value length, value)* | i32 payload length | payload
//! ```
//!
//! All little-endian, strings UTF-8. Every length is checked against the bytes left before it is used: the
//! bytes are the peer's to write.

use indexmap::IndexMap;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    pub payload: Vec<u8>,
    /// In the order they came (a later duplicate key replaces the earlier value).
    pub headers: IndexMap<String, String>,
    /// Event time, ms.
    pub timestamp: i64,
}

const FIXED_LENGTH: usize = 8 + 4 + 4;

pub fn decode(body: &[u8]) -> Result<Record, String> {
    if body.len() < FIXED_LENGTH {
        return Err(format!("corrupt record body: a record body of {} bytes is shorter than {FIXED_LENGTH}", body.len()));
    }
    let timestamp = i64::from_le_bytes(body[0..8].try_into().unwrap());
    let count = i32::from_le_bytes(body[8..12].try_into().unwrap());
    if count < 0 || count as usize > (body.len() - FIXED_LENGTH) / 8 {
        return Err(format!("corrupt record body: impossible header count {count}"));
    }
    let mut at = 12;
    let mut headers = IndexMap::with_capacity(count as usize);
    for _ in 0..count {
        let key = read_string(body, &mut at)?;
        let value = read_string(body, &mut at)?;
        headers.insert(key, value);
    }
    if at + 4 > body.len() {
        return Err("corrupt record body: the record body ends before its payload length".into());
    }
    let payload_length = i32::from_le_bytes(body[at..at + 4].try_into().unwrap());
    let left = body.len() - at - 4;
    if payload_length < 0 || payload_length as usize != left {
        return Err(format!("corrupt record body: payload length {payload_length} does not match the body's remaining {left} bytes"));
    }
    Ok(Record { payload: body[at + 4..].to_vec(), headers, timestamp })
}

fn read_string(body: &[u8], at: &mut usize) -> Result<String, String> {
    if *at + 4 > body.len() {
        return Err("corrupt record body: the record body ends inside its headers".into());
    }
    let length = i32::from_le_bytes(body[*at..*at + 4].try_into().unwrap());
    let start = *at + 4;
    if length < 0 || length as usize > body.len() - start {
        return Err(format!("corrupt record body: a header of {length} bytes runs past the body"));
    }
    *at = start + length as usize;
    Ok(String::from_utf8_lossy(&body[start..*at]).into_owned())
}

pub fn encoded_length(record: &Record) -> usize {
    FIXED_LENGTH + record.headers.iter().map(|(k, v)| 8 + k.len() + v.len()).sum::<usize>() + record.payload.len()
}

/// Writes the body of `record` into `out`, which is exactly `encoded_length(record)` bytes.
pub fn encode_into(record: &Record, out: &mut [u8]) {
    out[0..8].copy_from_slice(&record.timestamp.to_le_bytes());
    out[8..12].copy_from_slice(&(record.headers.len() as i32).to_le_bytes());
    let mut at = 12;
    for (key, value) in &record.headers {
        put_field(out, &mut at, key.as_bytes());
        put_field(out, &mut at, value.as_bytes());
    }
    put_field(out, &mut at, &record.payload);
}

/// The key before the record body in a keyed session's RECORD (docs/protocol.md, "Cells"): an i32 length and the
/// key's bytes; and the record body after it.
pub fn split_key(body: &[u8]) -> Result<(Vec<u8>, &[u8]), String> {
    let Some(length) = body.get(..4) else {
        return Err(format!("corrupt keyed record: a body of {} bytes has no key length", body.len()));
    };
    let length = i32::from_le_bytes(length.try_into().unwrap());
    if length < 0 || length as usize > body.len() - 4 {
        return Err(format!("corrupt keyed record: a key of {length} bytes in a body of {}", body.len()));
    }
    let end = 4 + length as usize;
    Ok((body[4..end].to_vec(), &body[end..]))
}

/// A BARRIER's body over shm (docs/protocol.md, "Cells", eviction): the i64 checkpoint id, then the keys to evict
/// until the body ends, each an i32 length and the key's bytes. A length that runs past the body is refused.
pub fn split_barrier(body: &[u8]) -> Result<(i64, Vec<Vec<u8>>), String> {
    let Some(id) = body.get(..8) else {
        return Err(format!("corrupt barrier: a body of {} bytes has no checkpoint id", body.len()));
    };
    let checkpoint_id = i64::from_le_bytes(id.try_into().unwrap());
    let (mut keys, mut at) = (Vec::new(), 8);
    while at < body.len() {
        let Some(length) = body.get(at..at + 4) else {
            return Err(format!("corrupt barrier: {} bytes at {at} of a body of {}, too few for a key length", body.len() - at, body.len()));
        };
        let length = i32::from_le_bytes(length.try_into().unwrap());
        let start = at + 4;
        if length < 0 || length as usize > body.len() - start {
            return Err(format!("corrupt barrier: a key to evict of {length} bytes at {at} runs past the body of {} bytes", body.len()));
        }
        at = start + length as usize;
        keys.push(body[start..at].to_vec());
    }
    Ok((checkpoint_id, keys))
}

/// Writes `bytes` behind their i32 length at `at`, then moves `at` past them: a field of a frame body.
pub fn put_field(out: &mut [u8], at: &mut usize, bytes: &[u8]) {
    out[*at..*at + 4].copy_from_slice(&(bytes.len() as i32).to_le_bytes());
    out[*at + 4..*at + 4 + bytes.len()].copy_from_slice(bytes);
    *at += 4 + bytes.len();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        let mut headers = IndexMap::new();
        headers.insert("k".to_string(), "v".to_string());
        headers.insert("".to_string(), "ü".to_string());
        Record { payload: b"{\"a\":1}".to_vec(), headers, timestamp: -5 }
    }

    #[test]
    fn a_record_survives_encoding() {
        let record = sample();
        let mut body = vec![0; encoded_length(&record)];
        encode_into(&record, &mut body);
        assert_eq!(decode(&body).unwrap(), record);
    }

    #[test]
    fn a_keyed_records_key_comes_before_its_body_and_a_bad_length_is_refused() {
        let record = sample();
        let mut body = vec![0; 4 + 3 + encoded_length(&record)];
        let mut at = 0;
        put_field(&mut body, &mut at, b"k\x00y");
        encode_into(&record, &mut body[at..]);
        let (key, rest) = split_key(&body).unwrap();
        assert_eq!((key.as_slice(), decode(rest).unwrap()), (&b"k\x00y"[..], record));
        assert_eq!(split_key(&0i32.to_le_bytes()).unwrap(), (Vec::new(), &[][..]));
        assert!(split_key(&[1, 0]).unwrap_err().contains("has no key length"));
        assert!(split_key(&[4, 0, 0, 0, 1]).unwrap_err().contains("a key of 4 bytes in a body of 5"));
        assert!(split_key(&(-1i32).to_le_bytes()).unwrap_err().contains("a key of -1 bytes"));
    }

    #[test]
    fn a_barriers_body_is_its_checkpoint_id_then_the_keys_to_evict_and_a_bad_length_is_refused() {
        let mut body = 7i64.to_le_bytes().to_vec();
        assert_eq!(split_barrier(&body).unwrap(), (7, Vec::<Vec<u8>>::new()));
        for key in [&b"a\x00b"[..], b"", b"user-1"] {
            body.extend((key.len() as i32).to_le_bytes());
            body.extend(key);
        }
        assert_eq!(split_barrier(&body).unwrap(), (7, vec![b"a\x00b".to_vec(), Vec::new(), b"user-1".to_vec()]));
        for cut in (0..body.len()).filter(|&cut| ![8, 15, 19].contains(&cut)) {
            assert!(split_barrier(&body[..cut]).unwrap_err().starts_with("corrupt barrier"), "a body cut to {cut} bytes was accepted");
        }
        let mut past = 7i64.to_le_bytes().to_vec();
        past.extend(5i32.to_le_bytes());
        past.extend(b"abcd");
        assert_eq!(split_barrier(&past).unwrap_err(), "corrupt barrier: a key to evict of 5 bytes at 8 runs past the body of 16 bytes");
        let mut negative = 7i64.to_le_bytes().to_vec();
        negative.extend((-1i32).to_le_bytes());
        assert!(split_barrier(&negative).unwrap_err().contains("a key to evict of -1 bytes"));
        assert!(split_barrier(&[0; 4]).unwrap_err().contains("a body of 4 bytes has no checkpoint id"));
    }

    #[test]
    fn every_cut_or_inflated_length_is_refused_not_read_past() {
        let record = sample();
        let mut body = vec![0; encoded_length(&record)];
        encode_into(&record, &mut body);
        for cut in 0..body.len() {
            assert!(decode(&body[..cut]).is_err(), "a body cut to {cut} bytes was accepted");
        }
        for at in [8, 12, 17] {
            let mut bad = body.clone();
            bad[at..at + 4].copy_from_slice(&i32::MAX.to_le_bytes());
            assert!(decode(&bad).unwrap_err().contains("corrupt record body"));
        }
    }
}
