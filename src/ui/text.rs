//! Lines of text written into the frame as ratatui's `Paragraph` writes
//! them when it does not wrap (left-aligned, cut at the area's right edge),
//! but without cutting plain text into grapheme clusters first: that took a
//! fifth of the live view's CPU, most of it on the blanks of the lanes.
//!
//! A span is plain when every character in it is printable, one cell wide
//! and from a block whose characters never join their neighbours into one
//! cluster (Latin, punctuation, arrows, maths, box drawing, blocks, shapes, dingbats).
//! A line with anything else in it, or aligned other than left, is handed
//! to `Paragraph` as it is.

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};
use unicode_width::UnicodeWidthChar;

/// Writes `lines` from the top of `area`, one a row, as `Paragraph::new(lines)` would.
pub fn render(buf: &mut Buffer, area: Rect, lines: &[Line]) {
    let area = area.intersection(buf.area);
    for (row, line) in (area.y..area.bottom()).zip(lines) {
        let row_area = Rect { y: row, height: 1, ..area };
        if line.alignment.is_some_and(|a| a != Alignment::Left)
            || !line.spans.iter().all(|s| plain(&s.content))
        {
            Paragraph::new(line.clone()).render(row_area, buf);
            continue;
        }
        let mut x = area.x;
        'line: for span in &line.spans {
            let style = line.style.patch(span.style);
            for c in span.content.chars() {
                if x >= area.right() {
                    break 'line;
                }
                buf[(x, row)].set_char(c).set_style(style);
                x += 1;
            }
        }
    }
}

/// A plain-lined box around `area`, `title` on its top edge, as
/// `Block::bordered().title(title).border_style(border)` draws it (without
/// the walk over every border cell to merge it with what was there, which
/// took a twelfth of a frame at 200×60); returns the area inside.
pub fn boxed(buf: &mut Buffer, area: Rect, title: Span, border: Style) -> Rect {
    let area = area.intersection(buf.area);
    let block = Block::bordered();
    let inner = block.inner(area);
    if area.width < 2 || area.height < 2 || !plain(&title.content) {
        Block::bordered().title(title).border_style(border).render(area, buf);
        return inner;
    }
    let (right, bottom) = (area.right() - 1, area.bottom() - 1);
    for x in area.x + 1..right {
        buf[(x, area.y)].set_char('─').set_style(border);
        buf[(x, bottom)].set_char('─').set_style(border);
    }
    for y in area.y + 1..bottom {
        buf[(area.x, y)].set_char('│').set_style(border);
        buf[(right, y)].set_char('│').set_style(border);
    }
    for (x, y, corner) in
        [(area.x, area.y, '┌'), (right, area.y, '┐'), (area.x, bottom, '└'), (right, bottom, '┘')]
    {
        buf[(x, y)].set_char(corner).set_style(border);
    }
    let room = Rect { x: area.x + 1, y: area.y, width: area.width - 2, height: 1 };
    render(buf, room, &[Line::from(title)]);
    inner
}

/// Whether every character of `text` is one cluster of one cell whatever
/// stands beside it.
fn plain(text: &str) -> bool {
    text.chars().all(|c| {
        matches!(c,
            ' '..='~'
            | '\u{a1}'..='\u{ac}'
            | '\u{ae}'..='\u{2af}'
            | '\u{2010}'..='\u{2027}'
            | '\u{2030}'..='\u{205e}'
            | '\u{2190}'..='\u{23ff}'
            | '\u{2500}'..='\u{25ff}'
            | '\u{2700}'..='\u{27bf}')
            && c.width() == Some(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::{Color, Style, Stylize};
    use ratatui::text::Span;

    /// The same lines drawn by `Paragraph` and by `render` over the same
    /// scribbled buffer.
    fn both(lines: &[Line<'static>], area: Rect) -> (Buffer, Buffer) {
        let mut scribbled = Buffer::empty(Rect::new(0, 0, 12, 4));
        for (i, cell) in scribbled.content.iter_mut().enumerate() {
            cell.set_char(char::from(b'a' + (i % 26) as u8)).set_style(Style::new().fg(Color::Green));
        }
        let mut by_paragraph = scribbled.clone();
        Paragraph::new(lines.to_vec()).render(area, &mut by_paragraph);
        let mut by_text = scribbled;
        render(&mut by_text, area, lines);
        (by_paragraph, by_text)
    }

    #[test]
    fn writes_every_cell_as_a_paragraph_does() {
        let cases: Vec<Vec<Line<'static>>> = vec![
            vec![Line::from("plain ascii that is far too long for the area")],
            vec![Line::from(vec![
                Span::raw("T0 "),
                Span::styled("▄▄╳░", Style::new().red()),
                Span::raw(" 1.2× · → ok"),
            ])],
            vec![
                Line::styled("line style", Style::new().bold()),
                Line::from(Span::raw("span").blue().on_black()),
            ],
            vec![
                Line::from("e\u{301}clat cafe\u{301}"),
                Line::from("日本語のテキスト"),
                Line::from("tab\there"),
            ],
            vec![Line::from("right").right_aligned(), Line::from("centre").centered()],
            vec![Line::from("a"), Line::from("b"), Line::from("c"), Line::from("d"), Line::from("e lost")],
            vec![Line::from("⌚ wide clock, ◾ wide square"), Line::from("👍🏽 and 🇫🇷 flag")],
        ];
        for lines in cases {
            for area in
                [Rect::new(0, 0, 12, 4), Rect::new(2, 1, 7, 2), Rect::new(11, 3, 1, 1), Rect::new(3, 3, 0, 1)]
            {
                let (paragraph, text) = both(&lines, area);
                assert_eq!(paragraph, text, "{lines:?} in {area:?}");
            }
        }
    }

    #[test]
    fn boxes_every_cell_as_a_block_does() {
        let titles = [
            " threading · 1 process · 2 threads ",
            "",
            " a title far too long for the box it names ",
            " 日本 ",
        ];
        for title in titles {
            for area in [
                Rect::new(0, 0, 12, 4),
                Rect::new(2, 1, 7, 3),
                Rect::new(1, 1, 2, 2),
                Rect::new(0, 0, 1, 3),
                Rect::new(5, 2, 9, 9),
            ] {
                let border = Style::new().fg(Color::DarkGray);
                let span = Span::styled(title, Style::new().bold().fg(Color::Cyan));
                let mut scribbled = Buffer::empty(Rect::new(0, 0, 12, 4));
                for (i, cell) in scribbled.content.iter_mut().enumerate() {
                    cell.set_char(char::from(b'a' + (i % 26) as u8)).set_style(Style::new().fg(Color::Green));
                }
                let mut by_block = scribbled.clone();
                let block = Block::bordered().title(span.clone()).border_style(border);
                let expected = block.inner(area.intersection(by_block.area));
                block.render(area, &mut by_block);
                let mut by_text = scribbled;
                let inner = boxed(&mut by_text, area, span, border);
                assert_eq!(by_block, by_text, "{title:?} in {area:?}");
                assert_eq!(inner, expected, "{title:?} in {area:?}");
            }
        }
    }

    #[test]
    fn plain_text_is_what_never_joins_a_neighbour() {
        assert!(plain("threading 0.98× of 2× · 5 ms → ░▄╳ ✗"));
        assert!(!plain("e\u{301}"), "a combining accent joins the letter before it");
        assert!(!plain("日"), "two cells wide");
        assert!(!plain("\t"), "a control character");
        assert!(!plain("\u{ad}"), "a soft hyphen");
        assert!(!plain("🇫"), "a regional indicator pairs with the next");
    }
}
