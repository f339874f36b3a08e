//! Unit tests of the chunked [`Output`](super::Output).
use super::Output;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// Copies the next input bytes, as the walk does.
    Next(usize),
    Copy(usize, usize),
    Extend(Vec<u8>),
    Truncate(usize),
    Insert(usize, Vec<u8>, Vec<u8>),
    From(usize),
    Span(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let bytes = || prop::collection::vec(b'a'..b'e', 0..12);
    prop_oneof![
        6 => (0..10usize).prop_map(Op::Next),
        2 => (0..48usize, 0..48usize).prop_map(|(s, e)| Op::Copy(s, e)),
        3 => bytes().prop_map(Op::Extend),
        2 => (0..48usize).prop_map(Op::Truncate),
        2 => (0..48usize, bytes(), bytes()).prop_map(|(a, x, y)| Op::Insert(a, x, y)),
        1 => (0..48usize).prop_map(Op::From),
        1 => (0..48usize, 0..48usize).prop_map(|(s, e)| Op::Span(s, e)),
    ]
}

proptest! {
    /// Whatever the chunk size, the output is what one buffer written the same way holds.
    #[test]
    fn chunks_behave_as_one_buffer(
        input in prop::collection::vec(b'a'..b'e', 0..40),
        chunk in 0..8usize,
        ops in prop::collection::vec(op(), 0..40),
    ) {
        let mut out = if chunk == 0 { Output::new(&input) } else { Output::with_chunk_size(&input, chunk) };
        let mut model: Vec<u8> = Vec::new();
        let mut cursor = 0;
        for op in ops {
            match op {
                Op::Next(k) => {
                    let e = (cursor + k).min(input.len());
                    out.copy(cursor, e);
                    model.extend_from_slice(&input[cursor..e]);
                    cursor = e;
                }
                Op::Copy(s, e) => {
                    out.copy(s, e);
                    if s < e && e <= input.len() {
                        model.extend_from_slice(&input[s..e]);
                        cursor = e;
                    }
                }
                Op::Extend(b) => {
                    out.extend_from_slice(&b);
                    model.extend_from_slice(&b);
                }
                Op::Truncate(l) => {
                    out.truncate(l);
                    model.truncate(l);
                }
                Op::Insert(at, x, y) => {
                    let at = at % (model.len() + 1);
                    out.insert(at, &[&x, &y]);
                    model.splice(at..at, x.iter().chain(&y).copied());
                }
                Op::From(f) => {
                    prop_assert_eq!(out.written_from(f), model.get(f..).unwrap_or_default());
                }
                Op::Span(s, e) => {
                    let want = model.get(s..).unwrap_or_default();
                    prop_assert_eq!(out.written(s, e), want.get(..e.saturating_sub(s)).unwrap_or_default());
                }
            }
            prop_assert_eq!(out.len(), model.len());
        }
        let want = (model != input).then_some(model);
        prop_assert_eq!(out.into_changed().map(|b| b.to_vec()), want);
    }
}

fn changed(out: Output<'_>) -> Option<Vec<u8>> {
    out.into_changed().map(|b| b.to_vec())
}

#[test]
fn copies_stay_virtual_until_a_difference() {
    let input = b"{\"a\":1,\"b\":2}";
    let mut out = Output::new(input);
    out.copy(0, 7);
    out.push(b'"');
    out.copy(8, input.len());
    assert!(out.buf.is_none());
    assert_eq!(changed(out), None);

    let mut out = Output::new(input);
    out.copy(0, 6);
    out.copy(12, input.len());
    assert_eq!(changed(out).as_deref(), Some(&b"{\"a\":1}"[..]));

    let mut out = Output::new(input);
    out.copy(0, 7);
    out.truncate(5);
    assert_eq!(out.written_from(0), b"{\"a\":");
    out.extend_from_slice(b"2}");
    out.insert(1, &[b"\"x\":", b"0,"]);
    assert_eq!(changed(out).as_deref(), Some(&b"{\"x\":0,\"a\":2}"[..]));
}

#[test]
fn a_small_body_is_one_chunk_at_the_input_size() {
    let input = br#"{"resourceType":"Patient","id":"p","active":true}"#;
    let mut out = Output::new(input);
    out.copy(0, 10);
    out.push(b'X');
    assert_eq!(out.buf.as_ref().map(Vec::capacity), Some(input.len() + 256));
    out.copy(11, input.len());
    let body = out.into_changed().unwrap();
    assert_eq!(body.chunks().count(), 1);
}

/// Chunks of 4 bytes: every operation crosses boundaries; the result is what one buffer
/// would hold.
#[test]
fn positions_are_global_across_chunks() {
    let input = b"0123456789abcdefghij";
    let mut out = Output::with_chunk_size(input, 4);
    out.copy(0, 3);
    out.push(b'-');
    // A span larger than a chunk, after one that filled the first.
    out.copy(3, 13);
    assert_eq!(out.len(), 14);
    out.flush();
    assert_eq!(out.chunks.len(), 1);
    assert_eq!(out.written_from(0), b"012-3456789abc");
    // Joined into one buffer by the read across chunks; write more chunks after it.
    out.extend_from_slice(b"XYZWV");
    out.copy(13, 20);
    assert!(!out.chunks.is_empty());
    // Reading across a boundary, from inside an earlier chunk.
    assert_eq!(out.written(12, 16), b"bcXY");
    assert_eq!(out.written_from(16), b"ZWVdefghij");
    // Inserting into an earlier chunk, with and without room in it.
    out.extend_from_slice(b"!");
    out.insert(2, &[b"<", b">"]);
    out.insert(0, &[b"^"]);
    let expected = b"^01<>2-3456789abcXYZWVdefghij!";
    assert_eq!(out.len(), expected.len());
    assert_eq!(out.written_from(0), expected);
    // Truncating into an earlier chunk drops those after it, and writing goes on there.
    out.extend_from_slice(b"tail-tail-tail");
    out.truncate(5);
    assert_eq!(out.len(), 5);
    out.copy(3, 6);
    out.extend_from_slice(b"end");
    let body = out.into_changed().unwrap();
    assert_eq!(body, &b"^01<>345end"[..]);
    assert_eq!(body.len(), 11);
}

#[test]
fn truncating_and_inserting_at_chunk_boundaries() {
    let input = b"abcdefghijklmnop";
    let mut out = Output::with_chunk_size(input, 4);
    out.push(b'_');
    out.copy(0, 11);
    assert_eq!(out.len(), 12);
    // At the end of an earlier chunk, and at the very start.
    out.insert(4, &[b"|"]);
    out.insert(0, &[b"|"]);
    out.copy(11, 16);
    assert_eq!(out.written_from(0), b"|_abc|defghijklmnop");
    out.truncate(8);
    out.truncate(8);
    assert_eq!(out.written_from(0), b"|_abc|de");
    out.truncate(0);
    assert_eq!(out.len(), 0);
    out.copy(0, 16);
    // Back to exactly the input: unchanged.
    assert!(out.into_changed().is_none());
}
