//! Newline framing with a hard size limit, shared by the server (64 KiB requests) and the client
//! (large responses, but still bounded).
//!
//! [`LineFramer`] is sans-I/O (the mini-redis `Frame` split): it takes byte chunks and yields
//! frames, and holds at most `limit` bytes however long a line is. A line longer than the limit is
//! reported once, as soon as the limit is crossed, and the rest of it is skipped up to its newline
//! without being stored, so a 1 MB line costs 64 KiB of memory and the next line is read normally.
//! [`LineReader`] drives it over an `AsyncRead` with a fixed 8 KiB read buffer.
//!
//! Framing rules: a line ends at `\n`; one trailing `\r` is dropped (telnet/socat users); lines that
//! are empty or only ASCII whitespace are skipped; an unterminated last line at end of input still
//! counts (so `printf '{"id":1,"cmd":"ping"}' | socat - UNIX:...` is answered). The limit counts
//! every byte before the `\n`, including a `\r`.

use tokio::io::{AsyncRead, AsyncReadExt};

/// One framed unit of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its `\n` (and without a trailing `\r`).
    Line(Vec<u8>),
    /// A line went over the limit; it is being discarded up to its newline.
    TooLong,
}

/// Sans-I/O line splitter with a size limit.
#[derive(Debug)]
pub struct LineFramer {
    limit: usize,
    buf: Vec<u8>,
    /// Inside an over-limit line whose `TooLong` has been reported: drop bytes until `\n`.
    discarding: bool,
}

impl LineFramer {
    pub fn new(limit: usize) -> Self {
        LineFramer {
            limit,
            buf: Vec::new(),
            discarding: false,
        }
    }

    /// Bytes currently held for an unfinished line (never more than the limit).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Consume bytes from `input` until one frame completes or `input` runs out. Returns how many
    /// bytes were consumed and the frame, if one completed. Call again with the unconsumed rest.
    pub fn push(&mut self, input: &[u8]) -> (usize, Option<Frame>) {
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            let newline = rest.iter().position(|&b| b == b'\n');
            let chunk_len = newline.unwrap_or(rest.len());
            let consumed = chunk_len + usize::from(newline.is_some());
            pos += consumed;

            if self.discarding {
                if newline.is_some() {
                    self.discarding = false;
                }
                continue;
            }
            if self.buf.len() + chunk_len > self.limit {
                // Report now rather than at the newline: the client learns early, and nothing
                // past the limit is ever stored.
                self.buf.clear();
                self.discarding = newline.is_none();
                return (pos, Some(Frame::TooLong));
            }
            self.buf.extend_from_slice(&rest[..chunk_len]);
            if newline.is_some()
                && let Some(frame) = self.take_line()
            {
                return (pos, Some(frame));
            }
        }
        (pos, None)
    }

    /// End of input: the unterminated last line, if any. Resets the framer.
    pub fn finish(&mut self) -> Option<Frame> {
        self.discarding = false;
        self.take_line()
    }

    fn take_line(&mut self) -> Option<Frame> {
        let mut line = std::mem::take(&mut self.buf);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        Some(Frame::Line(line))
    }
}

const READ_CHUNK: usize = 8 * 1024;

/// Reads [`Frame`]s from an async byte stream with a bounded buffer.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    framer: LineFramer,
    chunk: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(inner: R, limit: usize) -> Self {
        LineReader {
            inner,
            framer: LineFramer::new(limit),
            chunk: vec![0; READ_CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// The next frame, or `None` at end of input. Cancel-safe: bytes already read stay buffered
    /// (in `chunk` or the framer) when the future is dropped between reads.
    pub async fn next_frame(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            if self.start < self.end {
                let (n, frame) = self.framer.push(&self.chunk[self.start..self.end]);
                self.start += n;
                if frame.is_some() {
                    return Ok(frame);
                }
                continue;
            }
            if self.eof {
                return Ok(None);
            }
            let n = self.inner.read(&mut self.chunk).await?;
            self.start = 0;
            self.end = n;
            if n == 0 {
                self.eof = true;
                if let Some(frame) = self.framer.finish() {
                    return Ok(Some(frame));
                }
                return Ok(None);
            }
        }
    }

    /// Bytes held for unfinished input: the framer's partial line plus unread read-buffer bytes.
    pub fn buffered(&self) -> usize {
        self.framer.buffered() + (self.end - self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feed `chunks` in order and collect every frame, including the end-of-input one.
    fn run(limit: usize, chunks: &[Vec<u8>]) -> (Vec<Frame>, usize) {
        let mut f = LineFramer::new(limit);
        let mut out = Vec::new();
        let mut peak = 0;
        for chunk in chunks {
            let mut rest = &chunk[..];
            loop {
                let (n, frame) = f.push(rest);
                assert!(n <= rest.len());
                peak = peak.max(f.buffered());
                rest = &rest[n..];
                match frame {
                    Some(fr) => out.push(fr),
                    None => {
                        assert!(rest.is_empty(), "push stopped early without a frame");
                        break;
                    }
                }
            }
        }
        out.extend(f.finish());
        (out, peak)
    }

    /// The reference model: split the whole stream at newlines, then classify each piece.
    fn model(limit: usize, stream: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        let mut pieces: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
        // A trailing newline leaves an empty last piece: not a line.
        if pieces.last().is_some_and(|p| p.is_empty()) {
            pieces.pop();
        }
        for p in pieces {
            if p.len() > limit {
                out.push(Frame::TooLong);
                continue;
            }
            let p = p.strip_suffix(b"\r").unwrap_or(p);
            if !p.iter().all(u8::is_ascii_whitespace) {
                out.push(Frame::Line(p.to_vec()));
            }
        }
        out
    }

    #[test]
    fn splits_lines_and_strips_cr() {
        let (frames, _) = run(16, &[b"ab\r\ncd\n\n  \nef".to_vec()]);
        assert_eq!(
            frames,
            vec![
                Frame::Line(b"ab".to_vec()),
                Frame::Line(b"cd".to_vec()),
                Frame::Line(b"ef".to_vec())
            ]
        );
    }

    #[test]
    fn exactly_the_limit_is_accepted_one_more_is_not() {
        let (frames, _) = run(4, &[b"abcd\nabcde\nok\n".to_vec()]);
        assert_eq!(
            frames,
            vec![
                Frame::Line(b"abcd".to_vec()),
                Frame::TooLong,
                Frame::Line(b"ok".to_vec())
            ]
        );
    }

    #[test]
    fn too_long_is_reported_before_the_newline_arrives() {
        let mut f = LineFramer::new(4);
        let (n, frame) = f.push(b"abcdefgh");
        assert_eq!((n, frame), (8, Some(Frame::TooLong)));
        assert_eq!(f.push(b"ijkl"), (4, None));
        assert_eq!(f.push(b"m\nok\n"), (5, Some(Frame::Line(b"ok".to_vec()))));
    }

    #[test]
    fn a_megabyte_line_never_holds_more_than_the_limit() {
        let mut chunks: Vec<Vec<u8>> = (0..128).map(|_| vec![b'x'; 8192]).collect();
        chunks.push(b"\n{\"id\":1}\n".to_vec());
        let (frames, peak) = run(64 * 1024, &chunks);
        assert_eq!(
            frames,
            vec![Frame::TooLong, Frame::Line(b"{\"id\":1}".to_vec())]
        );
        assert!(peak <= 64 * 1024, "peak {peak}");
    }

    #[tokio::test]
    async fn reader_over_a_stream_of_small_reads() {
        let data = b"one\ntwo-is-too-long\nthree".to_vec();
        let mut builder = tokio_test_reader(&data, 3);
        let mut r = LineReader::new(&mut builder, 8);
        let mut got = Vec::new();
        while let Some(f) = r.next_frame().await.unwrap() {
            got.push(f);
        }
        assert_eq!(
            got,
            vec![
                Frame::Line(b"one".to_vec()),
                Frame::TooLong,
                Frame::Line(b"three".to_vec())
            ]
        );
        assert_eq!(r.next_frame().await.unwrap(), None);
    }

    /// An AsyncRead that returns at most `step` bytes per read.
    fn tokio_test_reader(data: &[u8], step: usize) -> impl AsyncRead + Unpin {
        struct Steps(std::collections::VecDeque<Vec<u8>>);
        impl AsyncRead for Steps {
            fn poll_read(
                mut self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                if let Some(c) = self.0.pop_front() {
                    buf.put_slice(&c);
                }
                std::task::Poll::Ready(Ok(()))
            }
        }
        Steps(data.chunks(step).map(<[u8]>::to_vec).collect())
    }

    fn stream_strategy() -> impl Strategy<Value = Vec<u8>> {
        // Bytes biased towards newlines, CRs and spaces so lines are short and edge cases common.
        proptest::collection::vec(
            prop_oneof![
                3 => Just(b'\n'),
                1 => Just(b'\r'),
                1 => Just(b' '),
                8 => any::<u8>(),
            ],
            0..400,
        )
    }

    proptest! {
        #[test]
        fn any_chunking_matches_the_model(
            stream in stream_strategy(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
            limit in 1usize..40,
        ) {
            let mut at: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            at.sort_unstable();
            let mut chunks = Vec::new();
            let mut prev = 0;
            for a in at {
                chunks.push(stream[prev..a].to_vec());
                prev = a;
            }
            chunks.push(stream[prev..].to_vec());
            let (frames, peak) = run(limit, &chunks);
            prop_assert_eq!(frames, model(limit, &stream));
            prop_assert!(peak <= limit);
        }

        #[test]
        fn arbitrary_chunks_never_panic(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16),
            limit in 0usize..32,
        ) {
            let (frames, peak) = run(limit, &chunks);
            prop_assert!(peak <= limit);
            for f in frames {
                if let Frame::Line(l) = f {
                    prop_assert!(l.len() <= limit);
                    prop_assert!(!l.contains(&b'\n'));
                }
            }
        }
    }
}
