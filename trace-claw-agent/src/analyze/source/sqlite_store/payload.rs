//! A transcript row's event as JSON text: `event_json` as stored, or `event_zstd` decompressed.
//! OpenClaw stores an event of 1 KiB to 4 MiB that shrinks by at least a tenth as one zstd
//! frame (level 1, with checksum, no dictionary) in `event_zstd`, its length in
//! `event_utf8_bytes`, and `event_json` NULL.

use std::borrow::Cow;
use std::io::Read;

use rusqlite::types::ValueRef;
use ruzstd::decoding::StreamingDecoder;

/// The largest event decompressed: far above OpenClaw's 4 MiB, so only a corrupt length or
/// frame is refused.
pub const MAX_EVENT_BYTES: u64 = 64 << 20;

/// Decompresses one zstd frame of `expected` bytes (when the row says), checking the length and
/// the frame's checksum.
fn decompress(frame: &[u8], expected: Option<u64>) -> Result<Vec<u8>, String> {
    let limit = expected.unwrap_or(MAX_EVENT_BYTES).min(MAX_EVENT_BYTES);
    let mut decoder =
        StreamingDecoder::new(frame).map_err(|e| format!("event_zstd is not a zstd frame: {e}"))?;
    let mut out = Vec::with_capacity(usize::try_from(limit.min(1 << 20)).unwrap_or(0));
    (&mut decoder)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("event_zstd is corrupt: {e}"))?;
    let got = out.len() as u64;
    match expected {
        Some(n) if got != n => {
            return Err(format!(
                "event_zstd holds {got} bytes where event_utf8_bytes says {n}"
            ))
        }
        None if got > limit => return Err(format!("event_zstd holds more than {limit} bytes")),
        _ => {}
    }
    let frame = &decoder.decoder;
    match (
        frame.get_checksum_from_data(),
        frame.get_calculated_checksum(),
    ) {
        (Some(stored), Some(computed)) if stored != computed => {
            Err("event_zstd fails its checksum".to_owned())
        }
        _ => Ok(out),
    }
}

/// The event of a row from its `event_json`, `event_zstd` and `event_utf8_bytes` values (NULL
/// where the schema lacks the column), or why there is none.
pub fn event<'a>(
    json: ValueRef<'a>,
    zstd: ValueRef<'a>,
    utf8_bytes: ValueRef<'a>,
) -> Result<Cow<'a, [u8]>, String> {
    match (json, zstd) {
        (ValueRef::Text(b) | ValueRef::Blob(b), _) if !b.is_empty() => Ok(Cow::Borrowed(b)),
        (_, ValueRef::Blob(frame)) => {
            let expected = match utf8_bytes {
                ValueRef::Integer(n) => Some(
                    u64::try_from(n).map_err(|_| format!("event_utf8_bytes is negative ({n})"))?,
                ),
                _ => None,
            };
            decompress(frame, expected).map(Cow::Owned)
        }
        _ => Err("the row holds neither event_json nor event_zstd".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &[u8] = br#"{"type":"session","version":4,"id":"s"}"#;

    fn frame(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    #[test]
    fn event_json_is_taken_as_stored() {
        let got = event(ValueRef::Text(EVENT), ValueRef::Null, ValueRef::Null);
        assert_eq!(got.as_deref(), Ok(EVENT));
    }

    #[test]
    fn event_zstd_is_decompressed_and_checked_against_its_length() {
        let z = frame(EVENT);
        let n = EVENT.len() as i64;
        let got = event(ValueRef::Null, ValueRef::Blob(&z), ValueRef::Integer(n));
        assert_eq!(got.as_deref(), Ok(EVENT));
        let unsized_ok = event(ValueRef::Null, ValueRef::Blob(&z), ValueRef::Null);
        assert_eq!(unsized_ok.as_deref(), Ok(EVENT));
        let wrong = event(ValueRef::Null, ValueRef::Blob(&z), ValueRef::Integer(n + 1));
        assert!(wrong.is_err_and(|e| e.contains("event_utf8_bytes says")));
    }

    /// A frame made by the reference zstd (`zstd -1 --check`, what OpenClaw's node:zlib writes).
    #[test]
    fn a_frame_of_the_reference_zstd_decodes() {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/openclaw/sqlite/event-level1-check.zst"
        );
        let z = std::fs::read(fixture).expect("fixture");
        let got = event(ValueRef::Null, ValueRef::Blob(&z), ValueRef::Null).expect("decodes");
        let v: serde_json::Value = serde_json::from_slice(&got).expect("json");
        assert_eq!(v["type"], "message");
    }

    #[test]
    fn rows_without_an_event_or_with_garbage_say_why() {
        let none = event(ValueRef::Null, ValueRef::Null, ValueRef::Null);
        assert!(none.is_err_and(|e| e.contains("neither")));
        let garbage = event(ValueRef::Null, ValueRef::Blob(b"not zstd"), ValueRef::Null);
        assert!(garbage.is_err_and(|e| e.contains("not a zstd frame")));
    }
}
