//! Reading a legacy extract: CSV (any usual delimiter, UTF-8 or Latin-1) or
//! XLSX, as rows of text with their line numbers, and the column mapping.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::domain::text::fold_key;

/// The fields of one legacy row, in this order everywhere.
pub const FIELDS: [&str; 10] = [
    "fecha",
    "consulado",
    "pais",
    "tipo_documento",
    "numero_documento",
    "nombres",
    "sexo",
    "fecha_nacimiento",
    "tipo_atencion",
    "canal",
];
pub const F_DATE: usize = 0;
pub const F_CONSULATE: usize = 1;
pub const F_COUNTRY: usize = 2;
pub const F_DOC_TYPE: usize = 3;
pub const F_DOC_NUMBER: usize = 4;
pub const F_NAME: usize = 5;
pub const F_SEX: usize = 6;
pub const F_BIRTH: usize = 7;
pub const F_TYPE: usize = 8;
pub const F_CHANNEL: usize = 9;

/// Fields a row cannot do without (the others may be blank or absent).
const REQUIRED: [usize; 4] = [F_DATE, F_CONSULATE, F_NAME, F_TYPE];

/// Which heading of the extract holds each field.
#[derive(Debug, Clone)]
pub struct Mapping {
    headings: [String; FIELDS.len()],
    /// `campo: spelling = entry` lines: (field index, spelling, entry),
    /// value mappings for this import only.
    pub values: Vec<(usize, String, String)>,
}

impl Default for Mapping {
    fn default() -> Self {
        Mapping {
            headings: FIELDS.map(str::to_owned),
            values: Vec::new(),
        }
    }
}

/// Fields whose values a mapping file may map.
pub const MAPPABLE: [usize; 6] = [F_CONSULATE, F_COUNTRY, F_DOC_TYPE, F_SEX, F_TYPE, F_CHANNEL];

impl Mapping {
    /// Reads `campo = Encabezado` lines (or `;`-separated pairs); `#` starts
    /// a comment. Fields not named keep their default heading. A line
    /// `campo: spelling = entry` maps a value for this import: `canal:
    /// Presencial = consulate_window` (the entry is any spelling the field
    /// resolves: a code, a name, an alias).
    pub fn parse(text: &str) -> Result<Mapping, String> {
        let mut m = Mapping::default();
        for (n, raw) in text.split(['\n', ';']).enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let Some((field, heading)) = line.split_once('=') else {
                return Err(format!(
                    "mapping entry {}: expected `campo = Encabezado`",
                    n + 1
                ));
            };
            let (field, heading) = (field.trim(), heading.trim());
            if let Some((field, spelling)) = field.split_once(':') {
                let (field, spelling) = (field.trim(), spelling.trim());
                let Some(i) = MAPPABLE.iter().copied().find(|&i| FIELDS[i] == field) else {
                    return Err(format!(
                        "mapping entry {}: values of `{field}` cannot be mapped; fields are {}",
                        n + 1,
                        MAPPABLE.map(|i| FIELDS[i]).join(", ")
                    ));
                };
                if spelling.is_empty() || heading.is_empty() {
                    return Err(format!(
                        "mapping entry {}: expected `{field}: spelling = entry`",
                        n + 1
                    ));
                }
                m.values.push((i, spelling.to_owned(), heading.to_owned()));
                continue;
            }
            let Some(i) = FIELDS.iter().position(|f| *f == field) else {
                return Err(format!(
                    "mapping entry {}: unknown field `{field}`; fields are {}",
                    n + 1,
                    FIELDS.join(", ")
                ));
            };
            if heading.is_empty() {
                return Err(format!(
                    "mapping entry {}: empty heading for `{field}`",
                    n + 1
                ));
            }
            m.headings[i] = heading.to_owned();
        }
        Ok(m)
    }

    /// For each field, the column that holds it in `header` (by folded
    /// heading), or an error naming the required fields that are missing.
    pub fn columns(&self, header: &[String]) -> Result<[Option<usize>; FIELDS.len()], String> {
        let folded: Vec<String> = header.iter().map(|h| fold_key(h)).collect();
        let mut out = [None; FIELDS.len()];
        for (i, heading) in self.headings.iter().enumerate() {
            let want = fold_key(heading);
            out[i] = folded.iter().position(|h| *h == want);
        }
        let missing: Vec<String> = REQUIRED
            .iter()
            .filter(|i| out[**i].is_none())
            .map(|i| format!("{} (heading `{}`)", FIELDS[*i], self.headings[*i]))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "the header has no column for {}; found: {}",
                missing.join(", "),
                header.join(" | ")
            ));
        }
        Ok(out)
    }
}

/// The kinds of file read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }

    /// By content: an XLSX file is a ZIP archive.
    pub fn detect(path: &Path) -> std::io::Result<Format> {
        let mut magic = [0_u8; 4];
        let n = File::open(path)?.read(&mut magic)?;
        Ok(if n == 4 && magic == *b"PK\x03\x04" {
            Format::Xlsx
        } else {
            Format::Csv
        })
    }
}

/// One row: its line in the file (1-based, the header is line 1) and its
/// cells as text.
pub type RawRecord = (u64, Vec<String>);

/// Rows of an extract, header first.
pub struct Rows {
    inner: Box<dyn Iterator<Item = Result<RawRecord, String>>>,
    /// Bytes of the file, and a counter of bytes read so far (CSV only).
    pub total_bytes: u64,
    pub read_bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Iterator for Rows {
    type Item = Result<RawRecord, String>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

/// Opens an extract.
pub fn open(path: &Path, format: Format) -> Result<Rows, String> {
    let total_bytes = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let read_bytes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let inner: Box<dyn Iterator<Item = Result<RawRecord, String>>> = match format {
        Format::Csv => Box::new(csv_rows(path, read_bytes.clone())?),
        Format::Xlsx => Box::new(xlsx_rows(path)?.into_iter().map(Ok)),
    };
    Ok(Rows {
        inner,
        total_bytes,
        read_bytes,
    })
}

/// Rows from the head and the tail of a CSV extract (the header left out),
/// to estimate how much of a file is already imported before deciding how
/// to load it: the first `per_end` rows, and the rows that start in the
/// last 512 KiB. A tail row cut by a quoted line break is misread, which
/// only makes it count as new. XLSX gives no sample.
pub fn sample(path: &Path, format: Format, per_end: usize) -> Result<Vec<Vec<String>>, String> {
    use std::io::{Seek, SeekFrom};
    if format != Format::Csv {
        return Ok(Vec::new());
    }
    let mut out: Vec<Vec<String>> = csv_rows(path, Default::default())?
        .skip(1)
        .take(per_end)
        .filter_map(Result::ok)
        .map(|(_, cells)| cells)
        .collect();
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    let from = size.saturating_sub(512 * 1024);
    if from > 0 {
        let mut head = BufReader::new(File::open(path).map_err(|e| e.to_string())?);
        let mut first = Vec::new();
        head.read_until(b'\n', &mut first)
            .map_err(|e| e.to_string())?;
        let delimiter = sniff_delimiter(&first);
        let mut file = File::open(path).map_err(|e| e.to_string())?;
        file.seek(SeekFrom::Start(from))
            .map_err(|e| e.to_string())?;
        let mut tail = BufReader::new(file);
        let mut partial = Vec::new();
        tail.read_until(b'\n', &mut partial)
            .map_err(|e| e.to_string())?;
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(tail);
        let mut record = csv::ByteRecord::new();
        while out.len() < per_end * 2 && reader.read_byte_record(&mut record).unwrap_or(false) {
            out.push(record.iter().map(decode).collect());
        }
    }
    Ok(out)
}

/// Text of a field: UTF-8 when it is, else Latin-1 (Windows-1252's printable
/// range), which is what legacy exports from Excel on Windows produce.
pub fn decode(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.trim().to_owned(),
        Err(_) => bytes
            .iter()
            .map(|b| char::from(*b))
            .collect::<String>()
            .trim()
            .to_owned(),
    }
}

/// The delimiter of the header line: the most frequent of `,` `;` tab `|`.
fn sniff_delimiter(first_line: &[u8]) -> u8 {
    [b',', b';', b'\t', b'|']
        .into_iter()
        .max_by_key(|d| first_line.iter().filter(|b| *b == d).count())
        .unwrap_or(b',')
}

/// Where the file's lines end, for the bytes read so far. The csv crate's
/// own line numbers were one too low (and did not count a lone `\r`), so a
/// refused row's line is counted here: CRLF, LF and CR each end one line,
/// also inside a quoted field, as an editor shows the file.
#[derive(Debug, Default)]
struct LineEnds {
    /// (offset, length) of line ends read ahead of the rows handed out.
    pending: std::collections::VecDeque<(u64, u64)>,
    /// Line ends before the last row handed out.
    passed: u64,
    /// A `\r` at this offset waits to see whether `\n` follows.
    cr: Option<u64>,
    offset: u64,
}

impl LineEnds {
    fn scan(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match (self.cr.take(), b) {
                (Some(cr), b'\n') => self.pending.push_back((cr, 2)),
                (None, b'\n') => self.pending.push_back((self.offset, 1)),
                (Some(cr), b'\r') => {
                    self.pending.push_back((cr, 1));
                    self.cr = Some(self.offset);
                }
                (None, b'\r') => self.cr = Some(self.offset),
                (Some(cr), _) => self.pending.push_back((cr, 1)),
                (None, _) => {}
            }
            self.offset += 1;
        }
    }

    /// The 1-based line of a row whose csv position is `byte`: csv places a
    /// row at the terminator that precedes it, so that line end counts, and
    /// so do the blank lines right after it (csv skips them).
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut next_start = None;
        while let Some(&(end, len)) = self.pending.front() {
            let blank = next_start == Some(end);
            if end > byte && !blank {
                break;
            }
            self.pending.pop_front();
            self.passed += 1;
            next_start = Some(end + len);
        }
        self.passed + 1
    }
}

struct Counting<R> {
    inner: R,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    lines: std::sync::Arc<std::sync::Mutex<LineEnds>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut lines) = self.lines.lock() {
            lines.scan(&buf[..n]);
        }
        Ok(n)
    }
}

fn csv_rows(
    path: &Path,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Result<impl Iterator<Item = Result<RawRecord, String>>, String> {
    let mut head =
        BufReader::new(File::open(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let mut first = Vec::new();
    head.read_until(b'\n', &mut first)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let delimiter = sniff_delimiter(&first);
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(LineEnds::default()));
    let line_ends = lines.clone();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(Counting {
            inner: file,
            read,
            lines,
        });
    let mut record = csv::ByteRecord::new();
    let mut first_row = true;
    Ok(std::iter::from_fn(move || {
        match reader.read_byte_record(&mut record) {
            Ok(false) => None,
            Ok(true) => {
                let start = record.position().map(|p| p.byte()).unwrap_or(0);
                let line = match line_ends.lock() {
                    Ok(mut ends) => ends.line_at(start),
                    Err(_) => 0,
                };
                let mut cells: Vec<String> = record.iter().map(decode).collect();
                if first_row {
                    first_row = false;
                    if let Some(c) = cells.first_mut() {
                        // a UTF-8 byte-order mark before the first heading
                        *c = c.trim_start_matches('\u{feff}').to_owned();
                    }
                }
                Some(Ok((line, cells)))
            }
            Err(e) => Some(Err(format!("unreadable CSV: {e}"))),
        }
    }))
}

/// The first sheet of a workbook. calamine reads a sheet whole; legacy
/// extracts of a million rows should come as CSV (see docs/legacy-import.md).
fn xlsx_rows(path: &Path) -> Result<Vec<RawRecord>, String> {
    use calamine::{open_workbook, Data, Reader, Xlsx};
    super::xlsx_guard::check(path)?;
    let mut book: Xlsx<_> = open_workbook(path).map_err(|e| format!("unreadable XLSX: {e}"))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or("the workbook has no sheet")?
        .map_err(|e| format!("unreadable XLSX sheet: {e}"))?;
    let start_row = range.start().map(|(r, _)| u64::from(r)).unwrap_or(0);
    Ok(range
        .rows()
        .enumerate()
        .map(|(i, row)| {
            let cells = row
                .iter()
                .map(|c| match c {
                    Data::Empty => String::new(),
                    Data::String(s) => s.trim().to_owned(),
                    Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
                        format!("{}", *f as i64)
                    }
                    Data::Float(f) => f.to_string(),
                    Data::Int(i) => i.to_string(),
                    Data::Bool(b) => b.to_string(),
                    Data::DateTime(d) => d
                        .as_datetime()
                        .map(|t| t.date().format("%Y-%m-%d").to_string())
                        .unwrap_or_else(|| d.to_string()),
                    Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
                    Data::Error(e) => format!("#{e:?}"),
                })
                .collect();
            (start_row + i as u64 + 1, cells)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(text: &str) -> Vec<u64> {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("x.csv");
        std::fs::write(&path, text).expect("write");
        let rows = csv_rows(&path, Default::default()).expect("rows");
        rows.map(|r| r.expect("row").0).collect()
    }

    #[test]
    fn line_numbers_are_the_same_with_crlf_and_lf() {
        let lf = "fecha,consulado\n2024-01-01,AR\n2024-01-02,\"a\nb\"\n2024-01-03,CL\n";
        assert_eq!(lines_of(lf), vec![1, 2, 3, 5]);
        assert_eq!(lines_of(&lf.replace('\n', "\r\n")), vec![1, 2, 3, 5]);
        assert_eq!(
            lines_of(&lf.replace('\n', "\r")),
            vec![1, 2, 3, 5],
            "old Mac line ends"
        );
        let blank = "fecha,consulado\n\n2024-01-01,AR\n";
        assert_eq!(
            lines_of(blank),
            vec![1, 3],
            "a blank line is skipped but counted"
        );
        assert_eq!(lines_of(&blank.replace('\n', "\r\n")), vec![1, 3]);
    }

    #[test]
    fn mapping_renames_fields_and_names_what_is_missing() {
        let m = Mapping::parse("fecha = FECHA_ATENCION # la fecha\nnombres=Nombre completo")
            .expect("parse");
        let header: Vec<String> = [
            "Fecha_Atención",
            "CONSULADO",
            "nombre completo",
            "Tipo atención",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cols = m.columns(&header).expect("columns");
        assert_eq!(cols[F_DATE], Some(0));
        assert_eq!(cols[F_NAME], Some(2));
        assert_eq!(cols[F_TYPE], Some(3));
        assert_eq!(cols[F_SEX], None);
        let err = Mapping::default()
            .columns(&header[1..])
            .expect_err("fecha missing");
        assert!(err.contains("fecha"), "{err}");
        assert!(Mapping::parse("colour = x").is_err());
    }

    #[test]
    fn latin1_and_delimiters_are_read() {
        assert_eq!(decode(b"Per\xfa"), "Perú");
        assert_eq!(decode("Perú".as_bytes()), "Perú");
        assert_eq!(sniff_delimiter(b"a;b;c,d\n"), b';');
        assert_eq!(sniff_delimiter(b"a\tb\tc\n"), b'\t');
    }
}
