//! Cutting a deb822 index into stanzas while it decompresses, so that
//! parsing keeps pace with decompression instead of waiting for the whole
//! text. Pieces end at a stanza boundary (a blank line), are checked to be
//! UTF-8, and each stanza is parsed on its own with `deb822-fast`'s
//! borrowed parser, so that one bad stanza does not hide the others.

use deb822_fast::borrowed::{BorrowedParagraph, iter_paragraphs_borrowed};

/// Largest stanza read (real Sources stanzas of packages with thousands of
/// files reach 400 KiB).
pub const MAX_STANZA: usize = 4 << 20;

/// What [`StanzaChunks`] hands on.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text that ends at a stanza boundary (or at the end of the file):
    /// zero or more whole stanzas.
    Text(&'a str),
    /// A stanza longer than [`MAX_STANZA`], skipped unread.
    Oversized,
}

/// Text that is not UTF-8 (the whole index is refused).
#[derive(Debug, PartialEq, Eq)]
pub struct NotUtf8;

/// Collects decompressed bytes and hands on whole stanzas as they
/// complete. Holds at most one stanza beyond the bytes last pushed.
#[derive(Debug, Default)]
pub struct StanzaChunks {
    buf: Vec<u8>,
    /// Inside an oversized stanza: bytes are dropped until its end.
    skipping: bool,
}

fn blank_line(bytes: &[u8]) -> Option<usize> {
    memchr::memmem::rfind(bytes, b"\n\n")
}

impl StanzaChunks {
    /// Adds `bytes`; calls `each` with the stanzas now complete.
    pub fn push(
        &mut self,
        mut bytes: &[u8],
        each: &mut impl FnMut(Piece<'_>),
    ) -> Result<(), NotUtf8> {
        if self.skipping {
            // The end of the oversized stanza: the first blank line,
            // counting one that straddles the previous push.
            let straddles = self.buf.last() == Some(&b'\n') && bytes.first() == Some(&b'\n');
            let end = if straddles {
                Some(1)
            } else {
                memchr::memmem::find(bytes, b"\n\n").map(|p| p + 2)
            };
            match end {
                Some(end) => {
                    self.skipping = false;
                    self.buf.clear();
                    bytes = &bytes[end..];
                }
                None => {
                    // Remember only the last byte, for a straddling blank line.
                    self.buf.clear();
                    self.buf
                        .extend_from_slice(&bytes[bytes.len().saturating_sub(1)..]);
                    return Ok(());
                }
            }
        }
        let from = self.buf.len().saturating_sub(1);
        self.buf.extend_from_slice(bytes);
        match blank_line(&self.buf[from..]) {
            Some(p) => {
                let cut = from + p + 2;
                let text = std::str::from_utf8(&self.buf[..cut]).map_err(|_| NotUtf8)?;
                each(Piece::Text(text));
                self.buf.drain(..cut);
                if self.buf.len() > MAX_STANZA {
                    self.oversized(each);
                }
            }
            None if self.buf.len() > MAX_STANZA => self.oversized(each),
            None => {}
        }
        Ok(())
    }

    fn oversized(&mut self, each: &mut impl FnMut(Piece<'_>)) {
        each(Piece::Oversized);
        self.skipping = true;
        let last = self.buf.last().copied();
        self.buf.clear();
        self.buf.extend(last);
    }

    /// The end of the text: hands on the last stanza.
    pub fn finish(self, each: &mut impl FnMut(Piece<'_>)) -> Result<(), NotUtf8> {
        if !self.skipping && !self.buf.is_empty() {
            each(Piece::Text(
                std::str::from_utf8(&self.buf).map_err(|_| NotUtf8)?,
            ));
        }
        Ok(())
    }
}

/// The stanzas of `text` (whole stanzas), each parsed on its own. Yields
/// the stanza, or why it could not be read.
pub fn stanzas(text: &str) -> impl Iterator<Item = Result<BorrowedParagraph<'_>, String>> + '_ {
    let mut from = 0;
    let mut ends = memchr::memmem::find_iter(text.as_bytes(), b"\n\n").chain([text.len()]);
    std::iter::from_fn(move || {
        let end = ends.next()?;
        // A blank line is ASCII: both ends are on character boundaries.
        let s = text.get(from..end).unwrap_or("");
        from = (end + 2).min(text.len());
        Some(s)
    })
    .filter(|s| !s.trim().is_empty())
    .map(|s| {
        if s.len() > MAX_STANZA {
            return Err(format!("stanza of {} bytes, over {MAX_STANZA}", s.len()));
        }
        let mut paragraphs = iter_paragraphs_borrowed(s);
        match (paragraphs.next(), paragraphs.next()) {
            (Some(Ok(p)), None) => Ok(p),
            (Some(Err(e)), _) => Err(format!("{e:?}")),
            (None, _) => Err("no fields".into()),
            (Some(Ok(_)), Some(_)) => Err("two stanzas without a blank line".into()),
        }
    })
}

/// The values of the fields `names` in `p` (names compared as deb822 does,
/// ignoring ASCII case), in one pass over its fields: the first field of
/// each name, `None` when it is missing or has more than one line.
pub fn fields<'a, const N: usize>(
    p: &BorrowedParagraph<'a>,
    names: [&str; N],
) -> [Option<&'a str>; N] {
    let mut out = [None; N];
    let mut seen = [false; N];
    for f in p.iter() {
        if let Some(i) = names.iter().position(|n| f.name().eq_ignore_ascii_case(n))
            && !seen[i]
        {
            seen[i] = true;
            out[i] = f.as_single_line();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(input: &[u8], chunk: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut each = |p: Piece<'_>| match p {
            Piece::Text(t) => out.push(t.to_string()),
            Piece::Oversized => out.push("<oversized>".into()),
        };
        let mut c = StanzaChunks::default();
        for part in input.chunks(chunk) {
            c.push(part, &mut each).unwrap();
        }
        c.finish(&mut each).unwrap();
        out
    }

    fn stanza_names(pieces: &[String]) -> Vec<String> {
        pieces
            .iter()
            .flat_map(|p| {
                if p == "<oversized>" {
                    return vec![p.clone()];
                }
                // An oversized stanza that arrives whole is refused here.
                stanzas(p)
                    .map(|s| match s {
                        Ok(s) => fields(&s, ["Package"])[0].unwrap().to_string(),
                        Err(e) => {
                            assert!(e.contains("over"), "{e}");
                            "<oversized>".to_string()
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_cut_gives_the_same_stanzas() {
        let text = b"Package: a\nVersion: 1\n\nPackage: b\nVersion: 2\n\n\nPackage: c\nDescription: x\n more\n";
        for chunk in 1..text.len() + 1 {
            assert_eq!(
                stanza_names(&pieces(text, chunk)),
                ["a", "b", "c"],
                "{chunk}"
            );
        }
    }

    #[test]
    fn an_oversized_stanza_is_skipped_and_the_next_one_read() {
        let mut text = b"Package: a\n\nPackage: big\nDescription: x\n".to_vec();
        while text.len() < MAX_STANZA + 100 {
            text.extend_from_slice(b" a continuation line of the long description\n");
        }
        text.extend_from_slice(b"\nPackage: c\n");
        for chunk in [1 << 16, 1 << 20, 3 << 20, 7 << 20] {
            assert_eq!(
                stanza_names(&pieces(&text, chunk)),
                ["a", "<oversized>", "c"],
                "{chunk}"
            );
        }
    }

    #[test]
    fn text_that_is_not_utf8_is_refused() {
        let mut c = StanzaChunks::default();
        let r = c.push(b"Package: \xff\n\nPackage: b\n", &mut |_| {});
        assert_eq!(r, Err(NotUtf8));
    }

    #[test]
    fn fields_ignore_case_and_take_the_first() {
        let p = stanzas("package: a\nVERSION: 1\nPackage: b\nDesc: x\n y\n")
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(
            fields(&p, ["Package", "Version", "Desc", "Missing"]),
            [Some("a"), Some("1"), None, None]
        );
    }
}
