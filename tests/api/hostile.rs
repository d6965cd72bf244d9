//! Hostile files: crafted workbooks end their import job as `failed` while
//! the server keeps serving.

use std::io::Write;

use mapce::domain::role::Role;

use crate::helpers::{Caller, TestApp};

/// A workbook with these parts besides the package plumbing; `stored`
/// parts are deflated at the best ratio (the bomb).
fn workbook(sheet: &[u8], shared: Option<&[u8]>) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9));
    let mut part = |name: &str, body: &[u8]| {
        zip.start_file(name, opts).expect("part");
        zip.write_all(body).expect("write");
    };
    part("[Content_Types].xml", br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#);
    part("_rels/.rels", br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#);
    part("xl/workbook.xml", br#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Hoja1" sheetId="1" r:id="rId1"/></sheets></workbook>"#);
    part("xl/_rels/workbook.xml.rels", br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#);
    part(
        "xl/sharedStrings.xml",
        shared.unwrap_or(br#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>fecha</t></si></sst>"#),
    );
    part("xl/worksheets/sheet1.xml", sheet);
    zip.finish().expect("finish");
    out.into_inner()
}

const SHEET_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#;
const SHEET_TAIL: &str = "</sheetData></worksheet>";

fn sheet(rows: &str) -> Vec<u8> {
    format!("{SHEET_HEAD}{rows}{SHEET_TAIL}").into_bytes()
}

async fn upload(app: &TestApp, admin: &Caller, body: Vec<u8>) -> String {
    let req = app
        .request("POST", "/api/v1/imports?name=crafted.xlsx")
        .await
        .insert_header(("Authorization", format!("Bearer {}", admin.token)))
        .insert_header((
            "Content-Type",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ));
    let resp = app.send(req, Some(body)).await;
    assert_eq!(resp.status, 202, "{:?}", resp.json());
    resp.json()["id"].as_str().expect("id").to_owned()
}

#[actix_web::test]
async fn crafted_workbooks_fail_their_job_and_the_server_keeps_serving() {
    let app = TestApp::spawn().await;
    let admin = app.caller("admin.hostile", Role::Admin, None);
    // A billion announced strings (calamine reserves them all).
    let strings = workbook(
        &sheet(r#"<row r="1"><c r="A1" t="s"><v>0</v></c></row>"#),
        Some(br#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1500000000" uniqueCount="1500000000"><si><t>fecha</t></si></sst>"#),
    );
    // One cell at the sheet's last address (calamine allocates the span).
    let far = workbook(
        &sheet(
            r#"<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="1048576"><c r="XFD1048576" t="s"><v>0</v></c></row>"#,
        ),
        None,
    );
    // A deflate bomb: half a gigabyte of cells in a few hundred kilobytes.
    let cell = r#"<c t="s"><v>0</v></c>"#;
    let row = format!("<row>{}</row>", cell.repeat(10));
    let mut bomb_sheet = String::from(SHEET_HEAD);
    while bomb_sheet.len() < (520 << 20) {
        bomb_sheet.push_str(&row.repeat(1000));
    }
    bomb_sheet.push_str(SHEET_TAIL);
    let bomb = workbook(bomb_sheet.as_bytes(), None);
    drop(bomb_sheet);
    assert!(
        bomb.len() < 4 << 20,
        "the bomb is small: {} bytes",
        bomb.len()
    );
    for (what, file, reason) in [
        ("shared strings", strings, "shared strings"),
        ("far cell", far, "columns"),
        ("deflate bomb", bomb, "inflates past"),
    ] {
        let id = upload(&app, &admin, file).await;
        let job = app.import_ended(&admin, &id).await;
        assert_eq!(job["status"], "failed", "{what}: {job}");
        assert!(
            job["error"].as_str().is_some_and(|e| e.contains(reason)),
            "{what}: {job}"
        );
        assert_eq!(
            app.get("/readyz").await.status,
            200,
            "{what}: still serving"
        );
    }
}
