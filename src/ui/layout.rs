//! Where the model panels go: side by side when each gets room enough,
//! else in a grid of two columns, else stacked, else as compact rows. The
//! screen iterates over the models; how many there are is decided here.

use ratatui::layout::Rect;

/// A full panel needs this many columns: lanes readable, figures on a grid.
pub const MIN_FULL_WIDTH: u16 = 40;

/// How a model is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// A bordered panel: counts, GIL lane, worker lanes, axis, figures.
    Full,
    /// A borderless block: one line of name, counts and figures, then lanes.
    Compact,
}

/// The panels of `n` models in `area`. `wanted(width)` is the height a full
/// panel `width` columns wide would like; `least` the height below which a
/// full panel shows no lane at all.
pub fn place(n: usize, area: Rect, wanted: impl Fn(u16) -> u16, least: u16) -> (Style, Vec<Rect>) {
    let n16 = u16::try_from(n.max(1)).unwrap_or(u16::MAX);
    // Side by side, one row.
    if area.width / n16 >= MIN_FULL_WIDTH && area.height >= least {
        let height = wanted(area.width / n16).min(area.height);
        return (Style::Full, grid(area, n, n16, height));
    }
    // Two columns, rows of them.
    let rows = n16.div_ceil(2);
    if n > 2 && area.width / 2 >= MIN_FULL_WIDTH && area.height / rows >= least {
        let height = wanted(area.width / 2).min(area.height / rows);
        return (Style::Full, grid(area, n, 2, height));
    }
    // One column, full width.
    if area.height / n16 >= least {
        let height = wanted(area.width).min(area.height / n16);
        return (Style::Full, grid(area, n, 1, height));
    }
    // Compact rows share all the height, the first ones taking what is left over.
    let (each, extra) = (area.height / n16, area.height % n16);
    let mut y = area.y;
    let rects = (0..n16)
        .map(|i| {
            let height = each + u16::from(i < extra);
            let rect = Rect { y, height, ..area };
            y += height;
            rect
        })
        .collect();
    (Style::Compact, rects)
}

/// `n` cells of `columns` per row, each `height` tall, filling the width.
fn grid(area: Rect, n: usize, columns: u16, height: u16) -> Vec<Rect> {
    let columns = columns.max(1);
    (0..n)
        .map(|i| {
            let i = u16::try_from(i).unwrap_or(u16::MAX);
            let (row, col) = (i / columns, i % columns);
            // The last column takes what division leaves over.
            let x0 = area.x + area.width * col / columns;
            let x1 = area.x + area.width * (col + 1) / columns;
            let y = area.y.saturating_add(row.saturating_mul(height));
            Rect { x: x0, y, width: x1 - x0, height: height.min(area.bottom().saturating_sub(y)) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(width: u16, height: u16) -> Rect {
        Rect { x: 0, y: 0, width, height }
    }

    #[test]
    fn two_models_sit_side_by_side_on_the_smallest_screen() {
        let (style, rects) = place(2, area(80, 16), |_| 12, 10);
        assert_eq!(style, Style::Full);
        assert_eq!(rects, [Rect::new(0, 0, 40, 12), Rect::new(40, 0, 40, 12)]);
    }

    #[test]
    fn four_models_go_side_by_side_on_a_projector_and_compact_at_80_by_24() {
        let (style, rects) = place(4, area(200, 48), |_| 20, 10);
        assert_eq!(style, Style::Full);
        assert!(rects.iter().all(|r| r.y == 0 && r.width == 50), "{rects:?}");
        let (style, rects) = place(4, area(80, 15), |_| 12, 10);
        assert_eq!(style, Style::Compact);
        assert_eq!(rects.iter().map(|r| r.height).collect::<Vec<_>>(), [4, 4, 4, 3], "all the rows are used");
    }

    #[test]
    fn three_models_make_a_grid_where_width_runs_short_but_height_does_not() {
        let (style, rects) = place(3, area(100, 40), |_| 14, 10);
        assert_eq!(style, Style::Full);
        assert_eq!(rects[2], Rect::new(0, 14, 50, 14));
    }
}
