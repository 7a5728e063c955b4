//! Turns a benchmark record (the JSON lines the benches append to `$KBUS_BENCH_RESULTS`, see
//! `benches/common/record.rs`) into BENCHMARKS.md's summary and its chart.
//!
//! ```text
//! bench-report RESULTS.jsonl BENCHMARKS.md CHART.svg [--note TEXT]...
//! ```
//!
//! The summary replaces what stands between `<!-- record:begin -->` and `<!-- record:end -->` in
//! BENCHMARKS.md (the lines are added at the top when missing): one table row per comparison —
//! the table, what was measured, the peer, both figures, kbus ÷ peer and the command — then the
//! notes given. The chart is an SVG of every ratio as a bar on a logarithmic axis around 1x.
//! `scripts/bench-record` runs it.

use std::fmt::Write as _;
use std::process::ExitCode;

const BEGIN: &str = "<!-- record:begin -->";
const END: &str = "<!-- record:end -->";

#[derive(Debug, Clone)]
struct Row {
    group: String,
    row: String,
    peer: String,
    ratio: f64,
    kbus: f64,
    peer_value: f64,
    unit: String,
    command: String,
}

fn parse(line: &str) -> Result<Row, String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
    let text = |k: &str| -> Result<String, String> {
        v[k].as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no text {k:?} in {line}"))
    };
    let number = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    Ok(Row {
        group: text("group")?,
        row: text("row")?,
        peer: text("peer")?,
        ratio: number("ratio"),
        kbus: number("kbus"),
        peer_value: number("peer_value"),
        unit: text("unit")?,
        command: text("command")?,
    })
}

/// A figure with thousands separators (or 3 significant digits when small).
fn figure(x: f64) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    if x >= 1000.0 {
        let digits = format!("{:.0}", x);
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

fn summary(rows: &[Row], notes: &[String]) -> String {
    let mut s = String::new();
    s.push_str(BEGIN);
    s.push('\n');
    s.push_str(
        "## Summary: kbus next to its peers\n\n\
         Written by `scripts/bench-record` from the benches' record (every row a comparison \
         measured in one run on identical input; above 1x kbus is faster). The sections below \
         explain how each bench measures.\n\n\
         ![kbus ÷ peer, every comparison of the record](docs/benchmarks.svg)\n\n",
    );
    s.push_str(
        "| table | measured | peer | kbus | peer | unit | kbus ÷ peer (speed) | command |\n",
    );
    s.push_str("|---|---|---|---:|---:|---|---:|---|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | **{:.2}x** | `{}` |",
            r.group,
            r.row,
            r.peer,
            figure(r.kbus),
            figure(r.peer_value),
            r.unit,
            r.ratio,
            r.command
        );
    }
    if !notes.is_empty() {
        s.push('\n');
        for n in notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    s.push_str(END);
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Horizontal bars on a log2 axis: from the 1x line to the right when kbus is faster, to the
/// left when slower.
fn chart(rows: &[Row]) -> String {
    let rows: Vec<&Row> = rows
        .iter()
        .filter(|r| r.ratio.is_finite() && r.ratio > 0.0)
        .collect();
    let label = |r: &Row| format!("{} · {} vs {}", r.group, r.row, r.peer);
    // About 6.5 px per character at 12 px sans-serif, so no label runs off the left edge.
    let longest = rows
        .iter()
        .map(|r| label(r).chars().count())
        .max()
        .unwrap_or(0);
    let (label_w, bar_w, row_h, top) = (longest as f64 * 6.5 + 20.0, 420.0, 22.0, 40.0);
    let lo = rows
        .iter()
        .map(|r| r.ratio)
        .fold(0.5f64, f64::min)
        .log2()
        .floor();
    let hi = rows
        .iter()
        .map(|r| r.ratio)
        .fold(2.0f64, f64::max)
        .log2()
        .ceil();
    let x = |ratio: f64| label_w + (ratio.log2() - lo) / (hi - lo) * bar_w;
    let height = top + rows.len() as f64 * row_h + 30.0;
    let width = label_w + bar_w + 70.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(
        s,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="10" y="20" font-size="14" font-weight="bold">kbus against each peer (log scale; right of 1x: kbus ahead — faster, quicker or smaller)</text>"##
    );
    let mut e = lo as i32;
    while e <= hi as i32 {
        let r = 2f64.powi(e);
        let xr = x(r);
        let _ = writeln!(
            s,
            r##"<line x1="{xr:.1}" y1="{top}" x2="{xr:.1}" y2="{:.1}" stroke="{}" stroke-width="{}"/><text x="{xr:.1}" y="{:.1}" text-anchor="middle">{}x</text>"##,
            height - 25.0,
            if e == 0 { "#333333" } else { "#dddddd" },
            if e == 0 { 1.5 } else { 1.0 },
            height - 10.0,
            figure(r)
        );
        e += 1;
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + i as f64 * row_h;
        let (x1, x2) = (x(1.0), x(r.ratio));
        let (left, w) = (x1.min(x2), (x2 - x1).abs().max(1.0));
        let colour = if r.ratio >= 1.0 { "#2e7d32" } else { "#e65100" };
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect x="{left:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{colour}"/><text x="{:.1}" y="{:.1}">{:.2}x</text>"##,
            label_w - 8.0,
            y + 15.0,
            escape(&label(r)),
            y + 4.0,
            row_h - 8.0,
            x1.max(x2) + 4.0,
            y + 15.0,
            r.ratio
        );
    }
    s.push_str("</svg>\n");
    s
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [results, markdown, svg, rest @ ..] = args.as_slice() else {
        eprintln!("usage: bench-report RESULTS.jsonl BENCHMARKS.md CHART.svg [--note TEXT]...");
        return ExitCode::from(2);
    };
    let notes: Vec<String> = rest
        .chunks(2)
        .filter_map(|pair| match pair {
            [flag, text] if flag == "--note" => Some(text.clone()),
            _ => None,
        })
        .collect();
    let text = match std::fs::read_to_string(results) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bench-report: {results}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rows: Vec<Row> = match text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse)
        .collect()
    {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("bench-report: {results}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if rows.is_empty() {
        eprintln!("bench-report: {results} holds no comparison");
        return ExitCode::FAILURE;
    }
    let old = std::fs::read_to_string(markdown).unwrap_or_default();
    let section = summary(&rows, &notes);
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{section}{}", &old[..b], &old[e + END.len()..])
        }
        _ => match old.split_once('\n') {
            // After the title line.
            Some((title, body)) => format!("{title}\n\n{section}\n{body}"),
            None => format!("{old}\n\n{section}\n"),
        },
    };
    if let Err(e) = std::fs::write(markdown, new).and_then(|()| std::fs::write(svg, chart(&rows))) {
        eprintln!("bench-report: writing {markdown} / {svg}: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "bench-report: {} comparisons written to {markdown} and {svg}",
        rows.len()
    );
    ExitCode::SUCCESS
}
