//! Bounds an XLSX workbook before calamine reads it. calamine sizes its
//! buffers from what the file says (the shared-string count, the span of
//! cell references), and an allocation that fails aborts the process: a
//! 2 KB crafted upload could end the server. Every XML part is inflated
//! here first, as a stream, counting bytes and scanning tags, so that a
//! deflate bomb, a cell at XFD1048576 or a billion announced strings are a
//! refused file, never an allocation.

use std::io::Read;
use std::path::Path;

/// Inflated size of one part (the sheet of a 1 M-row extract is ~250 MB).
pub const MAX_PART_BYTES: u64 = 384 << 20;
/// Inflated size of all parts together.
pub const MAX_TOTAL_BYTES: u64 = 512 << 20;
/// Cells of the sheet's bounding rectangle (calamine allocates all of them).
pub const MAX_CELLS: u64 = 40_000_000;
/// Columns of the sheet (legacy extracts have ~15).
pub const MAX_COLUMNS: u64 = 512;
/// Announced and actual shared strings.
pub const MAX_SHARED_STRINGS: u64 = 10_000_000;
/// Parts in the archive.
pub const MAX_ENTRIES: usize = 2_000;
/// Bytes of a tag kept for scanning its attributes.
const MAX_TAG: usize = 4096;

/// What a scan of the parts found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Span {
    max_row: u64,
    max_col: u64,
    rows: u64,
    widest_row: u64,
    cells_in_row: u64,
    strings_announced: u64,
    strings: u64,
}

impl Span {
    fn tag(&mut self, tag: &[u8]) {
        let name_end = tag
            .iter()
            .position(|b| b.is_ascii_whitespace() || *b == b'/')
            .unwrap_or(tag.len());
        match &tag[..name_end] {
            b"row" => {
                self.rows += 1;
                self.cells_in_row = 0;
                if let Some(r) = attribute(tag, b"r").and_then(parse_u64) {
                    self.max_row = self.max_row.max(r);
                }
            }
            b"c" => {
                self.cells_in_row += 1;
                self.widest_row = self.widest_row.max(self.cells_in_row);
                if let Some((row, col)) = attribute(tag, b"r").and_then(cell_ref) {
                    self.max_row = self.max_row.max(row);
                    self.max_col = self.max_col.max(col);
                }
            }
            b"dimension" => {
                if let Some(v) = attribute(tag, b"ref") {
                    for part in v.split(|b| *b == b':') {
                        if let Some((row, col)) = cell_ref(part) {
                            self.max_row = self.max_row.max(row);
                            self.max_col = self.max_col.max(col);
                        }
                    }
                }
            }
            b"sst" => {
                for name in [&b"count"[..], b"uniqueCount"] {
                    if let Some(n) = attribute(tag, name).and_then(parse_u64) {
                        self.strings_announced = self.strings_announced.max(n);
                    }
                }
            }
            b"si" => self.strings += 1,
            _ => {}
        }
    }

    fn problem(&self) -> Option<String> {
        let rows = self.max_row.max(self.rows);
        let cols = self.max_col.max(self.widest_row);
        if cols > MAX_COLUMNS {
            return Some(format!(
                "the sheet spans {cols} columns (at most {MAX_COLUMNS})"
            ));
        }
        if rows.saturating_mul(cols.max(1)) > MAX_CELLS {
            return Some(format!(
                "the sheet spans {rows} rows × {cols} columns (at most {MAX_CELLS} cells; send a large extract as CSV)"
            ));
        }
        let strings = self.strings_announced.max(self.strings);
        if strings > MAX_SHARED_STRINGS {
            return Some(format!(
                "the workbook announces {strings} shared strings (at most {MAX_SHARED_STRINGS})"
            ));
        }
        None
    }
}

/// The value of `name="…"` in a tag's bytes.
fn attribute<'a>(tag: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut i = 0;
    while i + name.len() + 2 <= tag.len() {
        let before_ok = i > 0 && tag[i - 1].is_ascii_whitespace();
        if before_ok && tag[i..].starts_with(name) && tag[i + name.len()] == b'=' {
            let quote = *tag.get(i + name.len() + 1)?;
            if quote != b'"' && quote != b'\'' {
                return None;
            }
            let start = i + name.len() + 2;
            let len = tag[start..].iter().position(|b| *b == quote)?;
            return Some(&tag[start..start + len]);
        }
        i += 1;
    }
    None
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// `XFD1048576` → (1048576, 16384), one-based.
fn cell_ref(v: &[u8]) -> Option<(u64, u64)> {
    let letters = v.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    if letters == 0 || letters > 7 {
        return None;
    }
    let col = v[..letters].iter().fold(0u64, |acc, b| {
        acc * 26 + u64::from(b.to_ascii_uppercase() - b'A' + 1)
    });
    let row = parse_u64(&v[letters..])?;
    Some((row, col))
}

/// Refuses a workbook whose parts inflate past the limits or whose first
/// sheet, announced or actual, would make calamine allocate past them.
pub fn check(path: &Path) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("unreadable XLSX: {e}"))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| format!("unreadable XLSX (not a zip archive): {e}"))?;
    if archive.len() > MAX_ENTRIES {
        return Err(format!(
            "the workbook has {} parts (at most {MAX_ENTRIES})",
            archive.len()
        ));
    }
    let mut total = 0u64;
    let mut span = Span::default();
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..archive.len() {
        let mut part = archive
            .by_index(i)
            .map_err(|e| format!("unreadable XLSX part: {e}"))?;
        let name = part.name().to_owned();
        // Only the parts calamine parses for a sheet's values matter;
        // other parts are still inflated to count them.
        let scan = name.ends_with("sharedStrings.xml")
            || (name.starts_with("xl/worksheets/") && name.ends_with(".xml"));
        let mut inflated = 0u64;
        let mut tag: Vec<u8> = Vec::with_capacity(256);
        let mut in_tag = false;
        loop {
            let n = part
                .read(&mut buf)
                .map_err(|e| format!("unreadable XLSX part {name}: {e}"))?;
            if n == 0 {
                break;
            }
            inflated += n as u64;
            total += n as u64;
            if inflated > MAX_PART_BYTES {
                return Err(format!(
                    "the part {name} inflates past {} MiB",
                    MAX_PART_BYTES >> 20
                ));
            }
            if total > MAX_TOTAL_BYTES {
                return Err(format!(
                    "the workbook inflates past {} MiB",
                    MAX_TOTAL_BYTES >> 20
                ));
            }
            if !scan {
                continue;
            }
            for &b in &buf[..n] {
                match (in_tag, b) {
                    (false, b'<') => {
                        in_tag = true;
                        tag.clear();
                    }
                    (true, b'>') => {
                        in_tag = false;
                        span.tag(&tag);
                    }
                    (true, _) if tag.len() < MAX_TAG => tag.push(b),
                    _ => {}
                }
            }
            if let Some(problem) = span.problem() {
                return Err(problem);
            }
        }
        if let Some(problem) = span.problem() {
            return Err(problem);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(xml: &str) -> Span {
        let mut span = Span::default();
        let mut rest = xml;
        while let Some(start) = rest.find('<') {
            let end = rest[start..]
                .find('>')
                .map(|e| start + e)
                .unwrap_or(rest.len());
            span.tag(&rest.as_bytes()[start + 1..end]);
            rest = &rest[(end + 1).min(rest.len())..];
        }
        span
    }

    #[test]
    fn cell_references_and_announced_counts_are_read_from_tags() {
        assert_eq!(cell_ref(b"XFD1048576"), Some((1_048_576, 16_384)));
        assert_eq!(cell_ref(b"A1"), Some((1, 1)));
        let far = scan(
            r#"<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="1048576"><c r="XFD1048576"/></row></sheetData></worksheet>"#,
        );
        assert!(
            far.problem().is_some_and(|p| p.contains("16384 columns")),
            "{far:?}"
        );
        let sst =
            scan(r#"<sst count="4000000000" uniqueCount="4000000000"><si><t>a</t></si></sst>"#);
        assert!(
            sst.problem().is_some_and(|p| p.contains("shared strings")),
            "{sst:?}"
        );
        let fine = scan(r#"<dimension ref="A1:O1001"/><row r="1"><c r="A1"/><c r="O1"/></row>"#);
        assert_eq!(fine.problem(), None, "{fine:?}");
    }
}
