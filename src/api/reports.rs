//! Rendering of OEI.05 exports for the planning office: one table model rendered as
//! JSON, CSV (UTF-8 with a BOM, so Excel reads accents right) or XLSX (a
//! formatted sheet and a native bar chart per breakdown, Spanish headings
//! as in the report, a notes sheet), and SVG bar charts for embedding.
//! Small counts can be suppressed ("<k") for publication.

use rust_xlsxwriter::{
    Chart, ChartType, Color, Format as CellFormat, FormatAlign, Workbook, Worksheet,
};
use serde::Serialize;

use super::indicators::Oei05Response;
use crate::services::indicators::{Breakdown, Figures};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Xlsx,
}

impl Format {
    pub fn parse(v: &str) -> Option<Format> {
        match v {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "xlsx" => Some(Format::Xlsx),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// The Spanish heading of a breakdown.
pub fn heading(breakdown: &str) -> &'static str {
    match breakdown {
        "sex" => "Sexo",
        "region" => "Región",
        "country" => "País",
        "consulate" => "Consulado",
        "attention_type" => "Tipo de atención",
        "category" => "Categoría",
        "channel" => "Canal",
        "age_group" => "Grupo de edad",
        _ => "Desglose",
    }
}

pub fn title_of(breakdown: &str, year: i32) -> String {
    format!(
        "Connacionales protegidos y asistidos {year} por {}",
        heading(breakdown).to_lowercase()
    )
}

/// One cell of an exported table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cell {
    Text(String),
    Count(i64),
    Percent(f64),
    /// A count under the publication threshold, shown as "<k".
    Suppressed(String),
    Empty,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sheet {
    pub name: String,
    /// The breakdown it shows, for the long CSV.
    pub breakdown: String,
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    /// Column of labels and of person counts, for the chart.
    #[serde(skip)]
    pub chart: Option<(u16, u16)>,
    pub footnote: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub indicator: String,
    pub year: Option<i32>,
    pub suppress_below: Option<i64>,
    pub sheets: Vec<Sheet>,
    pub notes: Vec<String>,
}

struct Cells {
    suppress: Option<i64>,
}

impl Cells {
    fn count(&self, n: i64) -> Cell {
        match self.suppress {
            Some(k) if n > 0 && n < k => Cell::Suppressed(format!("<{k}")),
            _ => Cell::Count(n),
        }
    }

    /// A percentage, hidden with its count when the count is suppressed.
    fn percent(&self, n: i64, p: f64) -> Cell {
        match self.suppress {
            Some(k) if n > 0 && n < k => Cell::Empty,
            _ => Cell::Percent(p),
        }
    }
}

impl Report {
    pub fn of(view: &Oei05Response, suppress: Option<i64>) -> Report {
        let c = Cells { suppress };
        let f = &view.figures;
        let year = view
            .year
            .unwrap_or_else(|| f.from.format("%Y").to_string().parse().unwrap_or(0));
        let mut sheets = vec![summary_sheet(view, year, &c), region_sex_sheet(f, year, &c)];
        sheets.extend(f.breakdowns.iter().map(|b| breakdown_sheet(b, year, &c)));
        if !f.series.is_empty() {
            sheets.push(series_sheet(f, year, &c));
        }
        let mut notes: Vec<String> = vec!["Reglas de conteo (counting rules):".into()];
        notes.extend(f.counting_rules.iter().cloned());
        if let Some(k) = suppress {
            notes.push(format!(
                "Cifras menores que {k} se muestran como \"<{k}\" para su publicación."
            ));
        }
        Report {
            indicator: view.indicator.clone(),
            year: view.year,
            suppress_below: suppress,
            sheets,
            notes,
        }
    }

    pub fn render(&self, format: Format) -> anyhow::Result<Vec<u8>> {
        match format {
            Format::Json => Ok(serde_json::to_vec_pretty(self)?),
            Format::Csv => Ok(self.csv().into_bytes()),
            Format::Xlsx => self.xlsx(),
        }
    }

    /// One row per group: `desglose,clave-less label,personas,%,atenciones`.
    fn csv(&self) -> String {
        let mut out = String::from("\u{FEFF}");
        out.push_str("desglose,grupo,columna,valor\r\n");
        for s in &self.sheets {
            for row in &s.rows {
                let label = match row.first() {
                    Some(Cell::Text(t)) => t.clone(),
                    _ => String::new(),
                };
                for (h, cell) in s.headers.iter().zip(row.iter()).skip(1) {
                    // Text is neutralised against formula injection; numbers
                    // (a drift may be negative) are written as they are.
                    let value = match cell {
                        Cell::Text(t) => csv_text(t),
                        Cell::Count(n) => n.to_string(),
                        Cell::Percent(p) => format!("{p:.1}"),
                        Cell::Suppressed(s) => csv_text(s),
                        Cell::Empty => String::new(),
                    };
                    let line = [
                        csv_field(&csv_text(&s.name)),
                        csv_field(&csv_text(&label)),
                        csv_field(&csv_text(h)),
                        csv_field(&value),
                    ];
                    out.push_str(&line.join(","));
                    out.push_str("\r\n");
                }
            }
        }
        for n in &self.notes {
            out.push_str(&format!("Notas,,,{}\r\n", csv_field(&csv_text(n))));
        }
        out
    }

    fn xlsx(&self) -> anyhow::Result<Vec<u8>> {
        let mut wb = Workbook::new();
        let formats = XlsxFormats::new();
        for s in &self.sheets {
            write_sheet(wb.add_worksheet(), s, &formats)?;
        }
        let ws = wb.add_worksheet();
        ws.set_name("Notas")?;
        ws.write_string_with_format(0, 0, "Notas", &formats.title)?;
        for (i, n) in self.notes.iter().enumerate() {
            ws.write_string(i as u32 + 2, 0, n)?;
        }
        ws.set_column_width(0, 140)?;
        Ok(wb.save_to_buffer()?)
    }
}

/// The cell formats of the workbook.
struct XlsxFormats {
    title: CellFormat,
    head: CellFormat,
    count: CellFormat,
    pct: CellFormat,
    plain: CellFormat,
    right: CellFormat,
    note: CellFormat,
}

impl XlsxFormats {
    fn new() -> XlsxFormats {
        let thin = rust_xlsxwriter::FormatBorder::Thin;
        XlsxFormats {
            title: CellFormat::new().set_bold().set_font_size(13),
            head: CellFormat::new()
                .set_bold()
                .set_background_color(Color::RGB(0x1F4E79))
                .set_font_color(Color::White)
                .set_align(FormatAlign::Center)
                .set_border(thin),
            count: CellFormat::new().set_num_format("#,##0").set_border(thin),
            pct: CellFormat::new().set_num_format("0.0").set_border(thin),
            plain: CellFormat::new().set_border(thin),
            right: CellFormat::new()
                .set_align(FormatAlign::Right)
                .set_border(thin),
            note: CellFormat::new()
                .set_italic()
                .set_font_color(Color::RGB(0x595959)),
        }
    }
}

/// One sheet: its title, headers, rows, footnote and chart.
fn write_sheet(ws: &mut Worksheet, s: &Sheet, fmt: &XlsxFormats) -> anyhow::Result<()> {
    ws.set_name(sheet_name(&s.name))?;
    ws.write_string_with_format(0, 0, &s.title, &fmt.title)?;
    for (i, h) in s.headers.iter().enumerate() {
        ws.write_string_with_format(2, i as u16, h, &fmt.head)?;
    }
    for (r, row) in s.rows.iter().enumerate() {
        let r = r as u32 + 3;
        for (c, cell) in row.iter().enumerate() {
            let c = c as u16;
            match cell {
                Cell::Text(t) => ws.write_string_with_format(r, c, t, &fmt.plain)?,
                Cell::Count(n) => ws.write_number_with_format(r, c, *n as f64, &fmt.count)?,
                Cell::Percent(p) => ws.write_number_with_format(r, c, *p, &fmt.pct)?,
                Cell::Suppressed(t) => ws.write_string_with_format(r, c, t, &fmt.right)?,
                Cell::Empty => ws.write_blank(r, c, &fmt.plain)?,
            };
        }
    }
    ws.set_column_width(0, if s.name == "Resumen" { 38 } else { 44 })?;
    for c in 1..s.headers.len() as u16 {
        ws.set_column_width(c, 13)?;
    }
    let last = s.rows.len() as u32 + 2;
    if let Some(f) = &s.footnote {
        ws.write_string_with_format(last + 2, 0, f, &fmt.note)?;
    }
    if let (Some(columns), true) = (s.chart, !s.rows.is_empty()) {
        ws.insert_chart(2, s.headers.len() as u16 + 1, &chart(s, columns, last))?;
    }
    Ok(())
}

/// A bar chart of a sheet's persons (columns for the monthly series).
fn chart(s: &Sheet, (label_col, value_col): (u16, u16), last: u32) -> Chart {
    let name = sheet_name(&s.name);
    let mut chart = Chart::new(if s.breakdown == "month" {
        ChartType::Column
    } else {
        ChartType::Bar
    });
    chart
        .add_series()
        .set_categories((name.as_str(), 3, label_col, last, label_col))
        .set_values((name.as_str(), 3, value_col, last, value_col))
        .set_name("Personas");
    chart.title().set_name(&s.title);
    chart.legend().set_hidden();
    if s.breakdown != "month" {
        chart.y_axis().set_reverse();
    }
    let height = (s.rows.len() as u32 * 22 + 120).clamp(260, 900);
    chart.set_height(height).set_width(640);
    chart
}

/// The figure, its period, and the target, progress, closing and drift
/// when there are.
fn summary_sheet(view: &Oei05Response, year: i32, c: &Cells) -> Sheet {
    let f = &view.figures;
    let text = |t: &str| Cell::Text(t.into());
    let mut rows = vec![
        vec![text("Indicador"), Cell::Text(view.indicator.clone())],
        vec![
            text("Periodo"),
            Cell::Text(format!("{} – {}", f.from, f.to)),
        ],
        vec![
            text("Connacionales protegidos y asistidos"),
            c.count(f.persons),
        ],
        vec![text("Atenciones"), c.count(f.attentions)],
    ];
    if let Some(t) = &view.target {
        rows.push(vec![text("Meta"), Cell::Count(t.target)]);
        rows.push(vec![text("Sentido"), text(t.sense.as_str())]);
    }
    if let Some(a) = &view.avance {
        rows.push(vec![text("Avance (%)"), Cell::Percent(a.capped)]);
        rows.push(vec![text("Avance sin tope (%)"), Cell::Percent(a.uncapped)]);
    }
    if let Some(closed) = &view.closed {
        rows.push(vec![
            text("Cerrado el"),
            Cell::Text(closed.closed_at.0.format("%Y-%m-%d %H:%M UTC").to_string()),
        ]);
    }
    if let Some(d) = view.drift.as_ref().filter(|d| d.has_drift) {
        rows.push(vec![
            text("Datos actuales (personas)"),
            c.count(d.persons_now),
        ]);
    }
    Sheet {
        name: "Resumen".into(),
        breakdown: "total".into(),
        title: format!("OEI.05 — {year}"),
        headers: vec!["Concepto".into(), "Valor".into()],
        rows,
        chart: None,
        footnote: None,
    }
}

fn region_sex_sheet(f: &Figures, year: i32, c: &Cells) -> Sheet {
    Sheet {
        name: "Región y sexo".into(),
        breakdown: "region_sex".into(),
        title: format!("Connacionales protegidos y asistidos {year} por región y sexo"),
        headers: ["Región", "Total", "Mujer", "%", "Hombre", "%", "Sin registro", "%"]
            .map(String::from)
            .to_vec(),
        rows: f
            .region_by_sex
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.label.clone()),
                    c.count(r.total),
                    c.count(r.female.persons),
                    c.percent(r.female.persons, r.female.percent),
                    c.count(r.male.persons),
                    c.percent(r.male.persons, r.male.percent),
                    c.count(r.not_recorded.persons),
                    c.percent(r.not_recorded.persons, r.not_recorded.percent),
                ]
            })
            .collect(),
        chart: None,
        footnote: Some("Una persona atendida en dos regiones cuenta en ambas; la fila Total la cuenta una vez.".into()),
    }
}

fn series_sheet(f: &Figures, year: i32, c: &Cells) -> Sheet {
    Sheet {
        name: "Serie mensual".into(),
        breakdown: "month".into(),
        title: format!("Connacionales protegidos y asistidos {year} por mes"),
        headers: ["Mes", "Personas", "Atenciones"].map(String::from).to_vec(),
        rows: f
            .series
            .iter()
            .map(|p| {
                vec![
                    Cell::Text(p.period.clone()),
                    c.count(p.persons),
                    c.count(p.attentions),
                ]
            })
            .collect(),
        chart: Some((0, 1)),
        footnote: Some(
            "Cada persona cuenta una vez por mes; los meses suman más que el total anual.".into(),
        ),
    }
}

fn breakdown_sheet(b: &Breakdown, year: i32, c: &Cells) -> Sheet {
    let mut rows: Vec<Vec<Cell>> = b
        .groups
        .iter()
        .map(|g| {
            vec![
                Cell::Text(g.label.clone()),
                c.count(g.persons),
                c.percent(g.persons, g.percent),
                c.count(g.attentions),
            ]
        })
        .collect();
    if let Some(o) = &b.others {
        rows.push(vec![
            Cell::Text(format!("Otros ({} grupos)", o.groups)),
            c.count(o.persons),
            Cell::Empty,
            c.count(o.attentions),
        ]);
    }
    Sheet {
        name: heading(&b.name).to_owned(),
        breakdown: b.name.clone(),
        title: title_of(&b.name, year),
        headers: vec![
            heading(&b.name).to_owned(),
            "Personas".into(),
            "%".into(),
            "Atenciones".into(),
        ],
        rows,
        chart: Some((0, 1)),
        footnote: b.groups_exceed_total.then(|| {
            "Una persona cuenta una vez en cada grupo en que aparece: los grupos suman más que el total."
                .to_owned()
        }),
    }
}

/// Excel sheet names: at most 31 characters, none of `[]:*?/\`.
fn sheet_name(name: &str) -> String {
    name.chars()
        .filter(|c| !"[]:*?/\\".contains(*c))
        .take(31)
        .collect()
}

/// A text a spreadsheet must not run: one starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return gets a leading apostrophe (OWASP's advice
/// against CSV formula injection), so a label like `=HYPERLINK(…)` shows as
/// text.
fn csv_text(v: &str) -> String {
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_owned()
    }
}

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

fn xml_escape(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart of a breakdown's persons.
pub fn bar_chart_svg(title: &str, b: &Breakdown) -> String {
    let mut bars: Vec<(String, i64)> = b
        .groups
        .iter()
        .map(|g| (g.label.clone(), g.persons))
        .collect();
    if let Some(o) = &b.others {
        bars.push((format!("Otros ({})", o.groups), o.persons));
    }
    let (left, bar_h, gap, width) = (260.0, 20.0, 6.0, 820.0);
    let plot = width - left - 80.0;
    let max = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1) as f64;
    let height = 60.0 + bars.len() as f64 * (bar_h + gap) + 20.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <title>{t}</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n\
         <text x=\"12\" y=\"28\" font-size=\"15\" font-weight=\"bold\">{t}</text>\n",
        t = xml_escape(title)
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = 50.0 + i as f64 * (bar_h + gap);
        let w = (*v as f64 / max * plot).max(if *v > 0 { 1.0 } else { 0.0 });
        let short: String = label.chars().take(38).collect();
        svg.push_str(&format!(
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{l}</text>\n\
             <rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bar_h}\" fill=\"#1f4e79\"/>\n\
             <text x=\"{vx:.1}\" y=\"{ty}\">{v}</text>\n",
            lx = left - 8.0,
            ty = y + 14.0,
            l = xml_escape(&short),
            vx = left + w + 6.0,
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed_and_sheet_names_fit_excel() {
        assert_eq!(csv_field("Perú, Lima"), "\"Perú, Lima\"");
        assert_eq!(csv_field("dice \"hola\""), "\"dice \"\"hola\"\"\"");
        assert_eq!(sheet_name("Región y sexo"), "Región y sexo");
        assert_eq!(sheet_name("a/b[c]").len(), 3);
        assert_eq!(sheet_name(&"x".repeat(40)).len(), 31);
    }

    #[test]
    fn small_counts_are_suppressed_with_their_percentages() {
        let c = Cells { suppress: Some(5) };
        assert_eq!(c.count(3), Cell::Suppressed("<5".into()));
        assert_eq!(c.count(0), Cell::Count(0));
        assert_eq!(c.count(5), Cell::Count(5));
        assert_eq!(c.percent(3, 1.2), Cell::Empty);
    }
}

#[cfg(test)]
mod csv_tests {
    use super::*;

    #[test]
    fn labels_that_look_like_formulas_are_written_as_text() {
        for label in ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx"] {
            let field = csv_field(&csv_text(label));
            assert!(
                field.trim_start_matches('"').starts_with('\''),
                "{label} -> {field}"
            );
        }
        assert_eq!(csv_text("Milán"), "Milán");
    }
}
