//! Cutting a deb822 index into stanzas while it decompresses, so that
//! parsing keeps pace with decompression instead of waiting for the whole
//! text. Pieces end at a stanza boundary (a blank line) and are checked to
//! be UTF-8; each stanza is read on its own, so that one bad stanza does
//! not hide the others.
//!
//! A stanza is read in one pass that keeps only the fields asked for
//! ([`scan`]): at the sizes of a real archive (100 MB of index text per
//! architecture) this takes a fifth of the time of a general deb822
//! parser, which builds every field of every stanza. Its tests check it
//! against `deb822-fast` on real stanzas.

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

/// The stanzas of `text` (whole stanzas, separated by blank lines), or
/// why one is not read.
pub fn stanzas(text: &str) -> impl Iterator<Item = Result<&str, String>> + '_ {
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
            Err(format!("stanza of {} bytes, over {MAX_STANZA}", s.len()))
        } else {
            Ok(s)
        }
    })
}

/// Reads `piece` stanza by stanza: `each` gets the fields `names` of each
/// stanza (see [`scan`]), or why that stanza is not read.
pub fn read_stanzas<const N: usize>(
    piece: Piece<'_>,
    names: [&str; N],
    mut each: impl FnMut(Result<[Option<&str>; N], String>),
) {
    match piece {
        Piece::Oversized => each(Err(format!("stanza over {MAX_STANZA} bytes"))),
        Piece::Text(text) => {
            for stanza in stanzas(text) {
                each(stanza.and_then(|s| scan(s, names)));
            }
        }
    }
}

fn shown(line: &str) -> String {
    line.chars()
        .take(80)
        .collect::<String>()
        .escape_debug()
        .to_string()
}

/// Reads one stanza in a single pass: the raw values of the fields
/// `names` (compared as deb822 does, ignoring ASCII case; the first of
/// each name), from after the colon to the end of the field's last
/// continuation line. A stanza that is not deb822 (a line that is neither
/// a field, a continuation nor a comment) is refused with the reason.
pub fn scan<'a, const N: usize>(
    stanza: &'a str,
    names: [&str; N],
) -> Result<[Option<&'a str>; N], String> {
    let bytes = stanza.as_bytes();
    // Ends the open field's value at the line starting at `pos`.
    let close = |out: &mut [Option<&'a str>; N], open: Option<(usize, usize)>, pos: usize| {
        if let Some((slot, start)) = open {
            out[slot] = Some(&stanza[start..pos - 1]);
        }
    };
    let mut out = [None; N];
    let mut seen = [false; N];
    // The field being read: its slot and where its value starts.
    let mut open: Option<(usize, usize)> = None;
    let mut fields = 0usize;
    let mut pos = 0;
    while pos < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
        match bytes[pos] {
            b' ' | b'\t' if fields == 0 => {
                return Err(format!(
                    "a continuation line before any field: `{}`",
                    shown(&stanza[pos..end])
                ));
            }
            b' ' | b'\t' | b'\n' => {}
            // A comment ends the value before it (indexes have none).
            b'#' => close(&mut out, open.take(), pos),
            _ => {
                close(&mut out, open.take(), pos);
                let line = &stanza[pos..end];
                let colon = memchr::memchr(b':', line.as_bytes())
                    .filter(|c| *c > 0)
                    .ok_or_else(|| format!("not a field: `{}`", shown(line)))?;
                fields += 1;
                let name = &line[..colon];
                if let Some(slot) = names
                    .iter()
                    .position(|n| n.len() == name.len() && n.eq_ignore_ascii_case(name))
                    && !seen[slot]
                {
                    seen[slot] = true;
                    open = Some((slot, pos + colon + 1));
                }
            }
        }
        pos = end + 1;
    }
    if let Some((slot, start)) = open {
        out[slot] = Some(
            stanza[start..]
                .strip_suffix('\n')
                .unwrap_or(&stanza[start..]),
        );
    }
    if fields == 0 {
        return Err("no fields".into());
    }
    Ok(out)
}

/// A field value that must be one line, trimmed; `None` for a value that
/// continues on further lines.
pub fn single_line(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.contains('\n'))
}

/// The lines of a multi-line field value, each trimmed, without the
/// empty first line most such fields have.
pub fn value_lines(value: Option<&str>) -> impl Iterator<Item = &str> {
    value
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
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
                        Ok(s) => {
                            let [name] = scan(s, ["Package"]).unwrap();
                            single_line(name).unwrap().to_string()
                        }
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
        let s = "package: a\nVERSION: 1\nPackage: b\nDesc: x\n y\n\tz\n# a comment\nLast:  v \n";
        let [p, v, d, l, m] = scan(s, ["Package", "Version", "Desc", "Last", "Missing"]).unwrap();
        assert_eq!(
            [p, v, l, m].map(single_line),
            [Some("a"), Some("1"), Some("v"), None]
        );
        assert_eq!(single_line(d), None);
        assert_eq!(value_lines(d).collect::<Vec<_>>(), ["x", "y", "z"]);
    }

    #[test]
    fn what_is_not_deb822_is_refused() {
        for bad in [
            " continued\nPackage: a\n",
            "Package: a\nno colon\n",
            ": no name\n",
            "# only\n",
        ] {
            assert!(scan(bad, ["Package"]).is_err(), "{bad:?}");
        }
    }

    /// Every field of the real stanzas reads as `deb822-fast` reads it.
    #[test]
    fn the_real_stanzas_read_as_deb822_fast_reads_them() {
        for file in ["Packages_hello.stanza", "Sources_hello.stanza"] {
            let text = std::fs::read_to_string(format!(
                "{}/../testdata/debian/{file}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            let text = text.trim_end();
            let reference = deb822_fast::borrowed::parse_borrowed(text).unwrap();
            assert_eq!(reference.len(), 1);
            let mut names = 0;
            for field in reference[0].iter() {
                let [value] = scan(text, [field.name()]).unwrap();
                match field.as_single_line() {
                    Some(one) => {
                        assert_eq!(single_line(value), Some(one.trim()), "{}", field.name())
                    }
                    None => assert_eq!(
                        value_lines(value).collect::<Vec<_>>(),
                        field
                            .lines()
                            .iter()
                            .map(|l| l.trim())
                            .filter(|l| !l.is_empty())
                            .collect::<Vec<_>>(),
                        "{}",
                        field.name()
                    ),
                }
                names += 1;
            }
            assert!(names >= 10, "{file}: {names} fields");
        }
    }
}
