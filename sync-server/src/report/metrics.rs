//! The metrics of the PDF's fonts: the standard Type 1 fonts every PDF reader has
//! (Helvetica, Helvetica-Bold, Courier), used with `WinAnsiEncoding`, so nothing is
//! embedded and the text extracts as written.
//!
//! Widths are Adobe's published Core 14 metrics (the AFM files, as Debian's groff
//! carries them in `font/devps/HR` and `HB`), in thousandths of the font size, for the
//! WinAnsi codes 32 to 255 (0 where the code has no glyph). Courier's glyphs are all 600.

/// A font of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Font {
    Regular,
    Bold,
    Mono,
}

impl Font {
    /// The name the pages' resources give it.
    pub fn resource(self) -> &'static [u8] {
        match self {
            Font::Regular => b"F1",
            Font::Bold => b"F2",
            Font::Mono => b"F3",
        }
    }

    /// The standard font's name.
    pub fn base_font(self) -> &'static [u8] {
        match self {
            Font::Regular => b"Helvetica",
            Font::Bold => b"Helvetica-Bold",
            Font::Mono => b"Courier",
        }
    }

    /// The width of WinAnsi code `code`, in thousandths of the font size.
    pub fn width(self, code: u8) -> u16 {
        let table = match self {
            Font::Regular => &HELVETICA,
            Font::Bold => &HELVETICA_BOLD,
            Font::Mono => return 600,
        };
        match code {
            32.. => table[usize::from(code - 32)],
            _ => 0,
        }
    }

    /// The width of `text` (already encoded) at `size` points.
    pub fn text_width(self, text: &[u8], size: f32) -> f32 {
        let units: u32 = text.iter().map(|&c| u32::from(self.width(c))).sum();
        units as f32 * size / 1000.0
    }
}

/// `c` in WinAnsiEncoding, or `None` when the encoding has no such character.
pub fn win_ansi(c: char) -> Option<u8> {
    let code = u32::from(c);
    match code {
        0x20..=0x7e | 0xa1..=0xff => Some(code as u8),
        // A no-break space is a space.
        0xa0 => Some(b' '),
        _ => Some(match c {
            '\u{20ac}' => 0x80,
            '\u{201a}' => 0x82,
            '\u{0192}' => 0x83,
            '\u{201e}' => 0x84,
            '\u{2026}' => 0x85,
            '\u{2020}' => 0x86,
            '\u{2021}' => 0x87,
            '\u{02c6}' => 0x88,
            '\u{2030}' => 0x89,
            '\u{0160}' => 0x8a,
            '\u{2039}' => 0x8b,
            '\u{0152}' => 0x8c,
            '\u{017d}' => 0x8e,
            '\u{2018}' => 0x91,
            '\u{2019}' => 0x92,
            '\u{201c}' => 0x93,
            '\u{201d}' => 0x94,
            '\u{2022}' => 0x95,
            '\u{2013}' => 0x96,
            '\u{2014}' => 0x97,
            '\u{02dc}' => 0x98,
            '\u{2122}' => 0x99,
            '\u{0161}' => 0x9a,
            '\u{203a}' => 0x9b,
            '\u{0153}' => 0x9c,
            '\u{017e}' => 0x9e,
            '\u{0178}' => 0x9f,
            _ => return None,
        }),
    }
}

#[rustfmt::skip]
const HELVETICA: [u16; 224] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, 0,
    556, 0, 222, 556, 333, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0,
    0, 222, 222, 333, 333, 350, 556, 1000, 333, 1000, 500, 333, 944, 0, 500, 667,
    278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    400, 584, 333, 333, 333, 578, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    667, 667, 667, 667, 667, 667, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500,
];

#[rustfmt::skip]
const HELVETICA_BOLD: [u16; 224] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, 0,
    556, 0, 278, 556, 500, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0,
    0, 278, 278, 500, 500, 350, 556, 1000, 333, 1000, 556, 333, 944, 0, 500, 667,
    278, 333, 556, 556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    400, 584, 333, 333, 333, 611, 556, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    722, 722, 722, 722, 722, 722, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278, 278,
    611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_are_helveticas() {
        // Adobe's AFM: space 278, A 667, W 944, i 222; bold A 722, i 278.
        assert_eq!(Font::Regular.width(b' '), 278);
        assert_eq!(Font::Regular.width(b'A'), 667);
        assert_eq!(Font::Regular.width(b'W'), 944);
        assert_eq!(Font::Regular.width(b'i'), 222);
        assert_eq!(Font::Bold.width(b'A'), 722);
        assert_eq!(Font::Bold.width(b'i'), 278);
        assert_eq!(Font::Mono.width(b'i'), 600);
        // Every character WinAnsi has, a glyph with a width.
        for c in (0x20u32..=0x2122).filter_map(char::from_u32) {
            if let Some(code) = win_ansi(c) {
                assert!(Font::Regular.width(code) > 0, "{c:?}");
                assert!(Font::Bold.width(code) > 0, "{c:?}");
            }
        }
        assert_eq!(win_ansi('\u{2014}'), Some(0x97));
        assert_eq!(win_ansi('é'), Some(0xe9));
        assert_eq!(win_ansi('\u{4e2d}'), None);
        assert_eq!(win_ansi('\n'), None);
    }
}
