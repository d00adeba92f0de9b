//! Writes the binary documents of the example company (`examples/acme/drive/`): the strategy
//! memo (DOCX), the process-metrics workbook (XLSX, three sheets) and the Google Sheet
//! `Fleet KPIs.gsheet.xlsx`. They are committed so the demo runs without a build step, and
//! regenerated with this program whenever their content changes:
//!
//! ```text
//! cargo run -p setup --example acme_documents
//! ```
//!
//! The facts they carry are listed in `examples/acme/README.md`.

use std::path::{Path, PathBuf};

use docx_rs::{Docx, Paragraph, Run};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook};

type Table<'a> = (&'a str, &'a [&'a str], &'a [&'a [Cell<'a>]]);

#[derive(Clone, Copy)]
enum Cell<'a> {
    Text(&'a str),
    Number(f64),
}
use Cell::{Number as N, Text as T};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let drive = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme/drive");
    strategy_memo(&drive.join("Strategy Memo 2026 - Project Rheinbruecke.docx"))?;
    workbook(
        &drive.join("Process Metrics Q4 2025.xlsx"),
        "Process Metrics Q4 2025",
        &[
            (
                "Order Intake",
                &[
                    "Month",
                    "Orders received",
                    "Orders by email (%)",
                    "Manual touchpoints per shipment",
                    "Quote turnaround (hours)",
                ],
                &[
                    &[T("Oct 2025"), N(4310.0), N(71.0), N(17.0), N(26.0)],
                    &[T("Nov 2025"), N(4585.0), N(69.0), N(17.0), N(27.0)],
                    &[T("Dec 2025"), N(3940.0), N(73.0), N(18.0), N(25.0)],
                ],
            ),
            (
                "Customs",
                &[
                    "Month",
                    "Declarations filed",
                    "Re-keyed by hand",
                    "Returned by customs (%)",
                    "Border delay per return (hours)",
                ],
                &[
                    &[T("Oct 2025"), N(1980.0), N(1390.0), N(4.2), N(9.5)],
                    &[T("Nov 2025"), N(2050.0), N(1410.0), N(4.6), N(10.1)],
                    &[T("Dec 2025"), N(1760.0), N(1400.0), N(3.9), N(8.7)],
                ],
            ),
            (
                "Warehouse",
                &[
                    "Hub",
                    "Share of pallet volume (%)",
                    "Picking errors per 10,000 pallets",
                    "Dock door utilisation (%)",
                ],
                &[
                    &[T("Duisburg"), N(38.0), N(14.0), N(81.0)],
                    &[T("Hamburg"), N(34.0), N(9.0), N(74.0)],
                    &[T("Nuremberg"), N(28.0), N(11.0), N(69.0)],
                ],
            ),
        ],
    )?;
    workbook(
        &drive.join("Fleet KPIs.gsheet.xlsx"),
        "Fleet KPIs",
        &[(
            "KPIs",
            &["KPI", "2025 value", "2027 target"],
            &[
                &[T("Empty-run share of kilometres"), T("23.5%"), T("15%")],
                &[T("Average truck age (years)"), N(7.8), N(6.0)],
                &[T("Telematics coverage of own fleet"), T("64%"), T("100%")],
                &[T("Diesel per 100 km (litres)"), N(31.2), N(28.5)],
            ],
        )],
    )?;
    println!("wrote the example documents to {}", drive.display());
    Ok(())
}

fn strategy_memo(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let heading = |text: &str| Paragraph::new().add_run(Run::new().add_text(text).bold().size(32));
    let para = |text: &str| Paragraph::new().add_run(Run::new().add_text(text));
    let doc = Docx::new()
        .add_paragraph(heading("Strategy Memo 2026: Project Rheinbrücke"))
        .add_paragraph(para("From: Management Board, Acme Logistics GmbH. To: all department heads. Date: 8 January 2026."))
        .add_paragraph(heading("Why"))
        .add_paragraph(para(
            "Our margins are squeezed by manual back-office work, late-delivery penalties and empty runs. \
             Customers expect quotes within the hour; we answer in 26 hours on average.",
        ))
        .add_paragraph(heading("Goals"))
        .add_paragraph(para("Goal 1: cut quote turnaround from 26 hours to 4 hours by the end of 2027."))
        .add_paragraph(para("Goal 2: halve late-delivery penalties on the Hamburg–Milan lane within 18 months."))
        .add_paragraph(para("Goal 3: bring the empty-run share of kilometres below 15 % by 2027."))
        .add_paragraph(heading("Budget"))
        .add_paragraph(para(
            "The board has approved a budget of EUR 1.8 million for automation in 2026, of which at most \
             EUR 400,000 may go to external consultants. Every project needs a payback period below 24 months.",
        ))
        .add_paragraph(heading("Principles"))
        .add_paragraph(para(
            "We keep TransLog 4 until at least 2028 and automate around it. People review what machines \
             prepare; no automated decision about drivers without the works council.",
        ));
    let file = std::fs::File::create(path)?;
    doc.build().pack(file)?;
    Ok(())
}

fn workbook(
    path: &Path,
    title: &str,
    sheets: &[Table<'_>],
) -> Result<(), Box<dyn std::error::Error>> {
    let mut book = Workbook::new();
    // A fixed creation time keeps regenerated files identical when the content is.
    book.set_properties(
        &DocProperties::new()
            .set_title(title)
            .set_author("Acme Logistics GmbH")
            .set_creation_datetime(&ExcelDateTime::from_ymd(2026, 1, 10)?),
    );
    let bold = Format::new().set_bold();
    for (name, header, rows) in sheets {
        let sheet = book.add_worksheet();
        sheet.set_name(*name)?;
        for (col, text) in header.iter().enumerate() {
            sheet.write_string_with_format(0, col as u16, *text, &bold)?;
            sheet.set_column_width(col as u16, 24)?;
        }
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (r, c) = (r as u32 + 1, c as u16);
                match cell {
                    Cell::Text(text) => sheet.write_string(r, c, *text)?,
                    Cell::Number(value) => sheet.write_number(r, c, *value)?,
                };
            }
        }
    }
    book.save(path)?;
    Ok(())
}
