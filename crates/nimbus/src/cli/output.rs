//! What the client commands print: a small table renderer, key/value listings, human-readable
//! sizes and pretty JSON. Bold and dim decoration only when stdout is a terminal and `NO_COLOR`
//! is unset; piped output stays plain text, one row per line.

use std::io::{self, IsTerminal, Write};

use anyhow::{Context, Result};
use serde::Serialize;

/// How a command prints its result on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human-readable tables.
    Table,
    /// The API's JSON, pretty-printed.
    Json,
}

/// Whether to decorate output with ANSI bold and dim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    decorate: bool,
}

impl Style {
    /// No escape codes at all.
    pub const PLAIN: Style = Style { decorate: false };

    /// Decorated when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn for_stdout() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        Style {
            decorate: io::stdout().is_terminal() && !no_color,
        }
    }

    fn bold(self, text: &str) -> String {
        self.wrap("\x1b[1m", text)
    }

    /// Dimmed text (timestamps, rules), when decorating.
    pub fn dim(self, text: &str) -> String {
        self.wrap("\x1b[2m", text)
    }

    fn wrap(self, code: &str, text: &str) -> String {
        if self.decorate {
            format!("{code}{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Rows of text cells under a header, each column as wide as its widest cell.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<I, S>(header: I) -> Table
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Table {
            header: header.into_iter().map(|cell| clean(&cell.into())).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells print empty, extra cells are dropped.
    pub fn push_row<I, S>(&mut self, row: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut row: Vec<String> = row.into_iter().map(|cell| clean(&cell.into())).collect();
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }

    /// The header, a rule under it when decorated, then the rows; columns two spaces apart.
    pub fn render(&self, style: Style) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|cell| width(cell)).collect();
        for row in &self.rows {
            for (column, cell) in row.iter().enumerate() {
                widths[column] = widths[column].max(width(cell));
            }
        }
        let mut out = render_line(&self.header, &widths, |cell| style.bold(cell));
        if style.decorate {
            let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
            out.push_str(&style.dim(&rule.join("  ")));
            out.push('\n');
        }
        for row in &self.rows {
            out.push_str(&render_line(row, &widths, str::to_owned));
        }
        out
    }
}

/// `key  value` lines with the keys aligned (bold when decorated).
pub fn render_fields(fields: &[(&str, String)], style: Style) -> String {
    let key_width = fields.iter().map(|(key, _)| width(key)).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in fields {
        let padding = " ".repeat(key_width - width(key) + 2);
        let line = format!("{}{padding}{}", style.bold(key), clean(value));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `512 B`, `1.0 KiB`, `3.4 MiB`, … (binary units, one decimal).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Display only: the precision lost converting to f64 is far below one decimal.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Writes text to stdout; a closed pipe (`nimbus functions list | head -1`) is not an error.
pub fn write_stdout(text: &str) -> Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("write to stdout"),
    }
}

/// Pretty JSON on stdout, followed by a newline.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("encode the output as JSON")?;
    text.push('\n');
    write_stdout(&text)
}

fn render_line(cells: &[String], widths: &[usize], paint: impl Fn(&str) -> String) -> String {
    let mut line = String::new();
    for (column, cell) in cells.iter().enumerate() {
        if column > 0 {
            line.push_str("  ");
        }
        line.push_str(&paint(cell));
        if column + 1 < cells.len() {
            line.push_str(&" ".repeat(widths[column] - width(cell)));
        }
    }
    let mut line = line.trim_end().to_owned();
    line.push('\n');
    line
}

/// Server-provided text must not break the layout or smuggle escape sequences to the terminal.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn width(text: &str) -> usize {
    text.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_table_aligns_columns_without_escape_codes() {
        let mut table = Table::new(["NAME", "RUNTIME", "MEMORY"]);
        table.push_row(["hello", "python3.12", "128 MB"]);
        table.push_row(["a-much-longer-name", "nodejs22.x", "1024 MB"]);
        let expected = "\
NAME                RUNTIME     MEMORY
hello               python3.12  128 MB
a-much-longer-name  nodejs22.x  1024 MB
";
        assert_eq!(table.render(Style::PLAIN), expected);
    }

    #[test]
    fn short_rows_are_padded_and_control_characters_replaced() {
        let mut table = Table::new(["A", "B"]);
        table.push_row(["x\ny"]);
        table.push_row(["\x1b[31mred", "z"]);
        assert_eq!(
            table.render(Style::PLAIN),
            "A         B\nx y\n [31mred  z\n"
        );
    }

    #[test]
    fn decorated_table_has_bold_header_and_dim_rule() {
        let mut table = Table::new(["K", "V"]);
        table.push_row(["a", "b"]);
        let out = table.render(Style { decorate: true });
        assert!(out.starts_with("\x1b[1mK\x1b[0m  \x1b[1mV\x1b[0m\n\x1b[2m─  ─\x1b[0m\n"));
        assert!(out.ends_with("a  b\n"));
    }

    #[test]
    fn fields_align_keys() {
        let fields = [
            ("Name", "f".to_owned()),
            ("Code size", "1.0 KiB".to_owned()),
        ];
        assert_eq!(
            render_fields(&fields, Style::PLAIN),
            "Name       f\nCode size  1.0 KiB\n"
        );
    }

    #[test]
    fn sizes_are_human_readable() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(1_258_291), "1.2 MiB");
        assert_eq!(human_size(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(human_size(50 * 1024 * 1024), "50.0 MiB");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(human_size(u64::MAX), "16.0 EiB");
    }
}
