//! A small page layout on [`pdf_writer`]: A4 pages, text wrapped to the margins in the
//! standard fonts ([`super::metrics`]), headings kept with what follows them, images
//! scaled to fit, and each page's footer ("page 3 of 41") written once the page count is
//! known. Content streams are compressed; JPEG photos are embedded as they are stored
//! (`DCTDecode`), so their bytes in the PDF are the evidence store's.

use std::io::Write;

use chrono::{DateTime, Datelike, Timelike, Utc};
use flate2::Compression;
use flate2::write::ZlibEncoder;
use pdf_writer::{Content, Date, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use super::metrics::{Font, win_ansi};

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 50.0;
/// Where text stops at the foot of a page (the footer sits below).
const BOTTOM: f32 = 62.0;
const TEXT_W: f32 = PAGE_W - 2.0 * MARGIN;

/// How a run of text looks.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub font: Font,
    pub size: f32,
    /// From the left margin, in points.
    pub indent: f32,
    /// Grey (0 black .. 1 white).
    pub grey: f32,
}

impl Style {
    pub const BODY: Style = Style {
        font: Font::Regular,
        size: 9.5,
        indent: 0.0,
        grey: 0.0,
    };
    pub const STRONG: Style = Style {
        font: Font::Bold,
        ..Style::BODY
    };
    pub const SMALL: Style = Style {
        size: 8.0,
        grey: 0.3,
        ..Style::BODY
    };
    pub const MONO: Style = Style {
        font: Font::Mono,
        size: 7.5,
        grey: 0.2,
        ..Style::BODY
    };

    pub fn indented(self, by: f32) -> Style {
        Style {
            indent: self.indent + by,
            ..self
        }
    }

    pub fn leading(&self) -> f32 {
        self.size * 1.3
    }
}

/// An image ready for the PDF.
#[derive(Debug)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub kind: ImageKind,
}

#[derive(Debug)]
pub enum ImageKind {
    /// A baseline or progressive JPEG, embedded as stored; `grey` for one component.
    Jpeg { bytes: Vec<u8>, grey: bool },
    /// 8-bit RGB pixels, zlib-compressed ([`deflate`]).
    Flate(Vec<u8>),
}

/// The pages being laid out.
pub struct Layout {
    pages: Vec<Content>,
    /// The images each page draws (indices into `images`).
    page_images: Vec<Vec<usize>>,
    images: Vec<Image>,
    /// Where the next line's top is, from the foot of the page.
    y: f32,
    /// Characters the fonts cannot show, printed as `?`.
    pub replaced: usize,
}

impl std::fmt::Debug for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layout")
            .field("pages", &self.pages.len())
            .field("images", &self.images.len())
            .finish_non_exhaustive()
    }
}

impl Default for Layout {
    fn default() -> Self {
        Self::new()
    }
}

impl Layout {
    pub fn new() -> Self {
        Layout {
            pages: vec![Content::new()],
            page_images: vec![Vec::new()],
            images: Vec::new(),
            y: PAGE_H - MARGIN,
            replaced: 0,
        }
    }

    fn page(&mut self) -> &mut Content {
        self.pages.last_mut().expect("a page")
    }

    /// Starts a new page.
    pub fn new_page(&mut self) {
        self.pages.push(Content::new());
        self.page_images.push(Vec::new());
        self.y = PAGE_H - MARGIN;
    }

    /// Makes room for `height` points on this page, or starts the next.
    pub fn need(&mut self, height: f32) {
        if self.y - height < BOTTOM && self.y < PAGE_H - MARGIN {
            self.new_page();
        }
    }

    pub fn space(&mut self, points: f32) {
        self.y -= points;
    }

    /// `text` in WinAnsi; a character the encoding lacks becomes `?` (and is counted),
    /// control characters become spaces.
    fn encode(&mut self, text: &str) -> Vec<u8> {
        text.chars()
            .map(|c| {
                if c.is_control() {
                    b' '
                } else {
                    win_ansi(c).unwrap_or_else(|| {
                        self.replaced += 1;
                        b'?'
                    })
                }
            })
            .collect()
    }

    /// `text` broken into lines no wider than `width`: at spaces, and inside a word only
    /// when the word alone is too wide (hashes, addresses). Line breaks in `text` are
    /// kept.
    fn wrap(&mut self, text: &str, style: Style, width: f32) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let encoded = self.encode(paragraph.trim_end_matches('\r'));
            let mut line: Vec<u8> = Vec::new();
            for word in encoded.split(|&b| b == b' ') {
                let sep = usize::from(!line.is_empty());
                let fits = style.font.text_width(&line, style.size)
                    + style.font.text_width(word, style.size)
                    + sep as f32 * style.font.text_width(b" ", style.size)
                    <= width;
                if fits {
                    if sep == 1 {
                        line.push(b' ');
                    }
                    line.extend_from_slice(word);
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                // A word wider than the line: cut it where it reaches the margin.
                let mut rest = word;
                while style.font.text_width(rest, style.size) > width {
                    let mut cut = 0;
                    let mut w = 0.0;
                    for (i, &c) in rest.iter().enumerate() {
                        w += f32::from(style.font.width(c)) * style.size / 1000.0;
                        if w > width {
                            break;
                        }
                        cut = i + 1;
                    }
                    let cut = cut.max(1);
                    lines.push(rest[..cut].to_vec());
                    rest = &rest[cut..];
                }
                line.extend_from_slice(rest);
            }
            lines.push(line);
        }
        lines
    }

    /// A paragraph of wrapped text.
    pub fn text(&mut self, text: &str, style: Style) {
        let lines = self.wrap(text, style, TEXT_W - style.indent);
        for line in lines {
            self.need(style.leading());
            self.y -= style.leading();
            let (x, y) = (MARGIN + style.indent, self.y + style.size * 0.25);
            let page = self.page();
            page.set_fill_gray(style.grey);
            page.begin_text();
            page.set_font(Name(style.font.resource()), style.size);
            page.next_line(x, y);
            page.show(Str(&line));
            page.end_text();
        }
    }

    /// A bold label and its value on one line (wrapped under the value's start).
    pub fn field(&mut self, label: &str, value: &str, style: Style) {
        let label_w = 110.0;
        let lines = self.wrap(value, style, TEXT_W - style.indent - label_w);
        let label = self.encode(label);
        for (i, line) in lines.into_iter().enumerate() {
            self.need(style.leading());
            self.y -= style.leading();
            let (x, y) = (MARGIN + style.indent, self.y + style.size * 0.25);
            let page = self.page();
            page.set_fill_gray(style.grey);
            if i == 0 {
                page.begin_text();
                page.set_font(Name(Font::Bold.resource()), style.size);
                page.next_line(x, y);
                page.show(Str(&label));
                page.end_text();
            }
            page.begin_text();
            page.set_font(Name(style.font.resource()), style.size);
            page.next_line(x + label_w, y);
            page.show(Str(&line));
            page.end_text();
        }
    }

    /// A heading: level 1 starts a section (a rule above), level 2 a part of one; kept
    /// on a page with room for a few lines after it.
    pub fn heading(&mut self, level: u8, text: &str) {
        let size = match level {
            0 => 18.0,
            1 => 14.0,
            2 => 11.5,
            _ => 10.0,
        };
        self.need(size * 1.6 + 4.0 * Style::BODY.leading());
        self.space(if level <= 1 { 10.0 } else { 5.0 });
        if level == 1 {
            let y = self.y;
            let page = self.page();
            page.set_stroke_gray(0.6);
            page.set_line_width(0.5);
            page.move_to(MARGIN, y);
            page.line_to(PAGE_W - MARGIN, y);
            page.stroke();
            self.space(4.0);
        }
        self.text(
            text,
            Style {
                font: Font::Bold,
                size,
                ..Style::BODY
            },
        );
        self.space(2.0);
    }

    /// An image, scaled (never up) to at most `max_w` × `max_h` points, on the left.
    pub fn image(&mut self, image: Image, max_w: f32, max_h: f32) {
        let (w, h) = (image.width.max(1) as f32, image.height.max(1) as f32);
        let scale = (max_w / w).min(max_h / h).min(1.0);
        let (dw, dh) = (w * scale, h * scale);
        self.need(dh + 4.0);
        self.y -= dh + 2.0;
        let index = self.images.len();
        self.images.push(image);
        self.page_images.last_mut().expect("a page").push(index);
        let y = self.y;
        let page = self.page();
        page.save_state();
        page.transform([dw, 0.0, 0.0, dh, MARGIN, y]);
        page.x_object(Name(format!("Im{index}").as_bytes()));
        page.restore_state();
        self.y -= 2.0;
    }

    /// How many pages so far.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// The finished PDF: `title` in its information, `footer` and "page i of n" at the
    /// foot of each page.
    pub fn finish(mut self, title: &str, footer: &str, made: DateTime<Utc>) -> Vec<u8> {
        let n = self.pages.len();
        let footer = self.encode(footer);
        for (i, page) in self.pages.iter_mut().enumerate() {
            let numbered = format!("page {} of {n}", i + 1).into_bytes();
            page.set_fill_gray(0.35);
            page.begin_text();
            page.set_font(Name(Font::Regular.resource()), 7.5);
            page.next_line(MARGIN, 32.0);
            page.show(Str(&footer));
            page.end_text();
            let w = Font::Regular.text_width(&numbered, 7.5);
            page.begin_text();
            page.set_font(Name(Font::Regular.resource()), 7.5);
            page.next_line(PAGE_W - MARGIN - w, 32.0);
            page.show(Str(&numbered));
            page.end_text();
        }

        let mut next = 1;
        let mut alloc = || {
            let r = Ref::new(next);
            next += 1;
            r
        };
        let catalog = alloc();
        let tree = alloc();
        let info = alloc();
        let fonts = [Font::Regular, Font::Bold, Font::Mono].map(|f| (f, alloc()));
        let image_refs: Vec<Ref> = self.images.iter().map(|_| alloc()).collect();
        let page_refs: Vec<(Ref, Ref)> = self.pages.iter().map(|_| (alloc(), alloc())).collect();

        let mut pdf = Pdf::new();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree)
            .kids(page_refs.iter().map(|(p, _)| *p))
            .count(n as i32);
        let mut doc_info = pdf.document_info(info);
        doc_info.title(TextStr(title));
        doc_info.creator(TextStr("Wardcheck"));
        doc_info.producer(TextStr("Wardcheck sync server (pdf-writer)"));
        doc_info.creation_date(pdf_date(made));
        doc_info.finish();
        for (font, id) in fonts {
            pdf.type1_font(id)
                .base_font(Name(font.base_font()))
                .encoding_predefined(Name(b"WinAnsiEncoding"));
        }
        for (image, id) in self.images.iter().zip(&image_refs) {
            match &image.kind {
                ImageKind::Jpeg { bytes, grey } => {
                    let mut x = pdf.image_xobject(*id, bytes);
                    x.filter(Filter::DctDecode);
                    x.width(image.width as i32);
                    x.height(image.height as i32);
                    if *grey {
                        x.color_space().device_gray();
                    } else {
                        x.color_space().device_rgb();
                    }
                    x.bits_per_component(8);
                }
                ImageKind::Flate(packed) => {
                    let mut x = pdf.image_xobject(*id, packed);
                    x.filter(Filter::FlateDecode);
                    x.width(image.width as i32);
                    x.height(image.height as i32);
                    x.color_space().device_rgb();
                    x.bits_per_component(8);
                }
            }
        }
        for (((page_ref, content_ref), content), images) in
            page_refs.iter().zip(self.pages).zip(&self.page_images)
        {
            let mut page = pdf.page(*page_ref);
            page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
            page.parent(tree);
            page.contents(*content_ref);
            let mut resources = page.resources();
            let mut f = resources.fonts();
            for (font, id) in fonts {
                f.pair(Name(font.resource()), id);
            }
            f.finish();
            if !images.is_empty() {
                let mut x = resources.x_objects();
                for &i in images {
                    x.pair(Name(format!("Im{i}").as_bytes()), image_refs[i]);
                }
                x.finish();
            }
            resources.finish();
            page.finish();
            let packed = deflate(&content.finish());
            pdf.stream(*content_ref, &packed)
                .filter(Filter::FlateDecode);
        }
        pdf.finish()
    }
}

/// `bytes` zlib-compressed, as `FlateDecode` reads them.
pub fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut z = ZlibEncoder::new(Vec::with_capacity(bytes.len() / 3), Compression::fast());
    z.write_all(bytes).expect("writing to memory");
    z.finish().expect("writing to memory")
}

fn pdf_date(t: DateTime<Utc>) -> Date {
    Date::new(t.year().clamp(0, 9999) as u16)
        .month(t.month() as u8)
        .day(t.day() as u8)
        .hour(t.hour() as u8)
        .minute(t.minute() as u8)
        .second(t.second() as u8)
        .utc_offset_hour(0)
        .utc_offset_minute(0)
}

/// A JPEG's size and number of colour components, from its frame header.
pub fn jpeg_frame(bytes: &[u8]) -> Option<(u32, u32, u8)> {
    if bytes.get(..2)? != [0xff, 0xd8] {
        return None;
    }
    let mut at = 2;
    loop {
        // Markers may be padded with 0xff bytes.
        while *bytes.get(at)? == 0xff && *bytes.get(at + 1)? == 0xff {
            at += 1;
        }
        if *bytes.get(at)? != 0xff {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        let len = usize::from(u16::from_be_bytes([
            *bytes.get(at + 2)?,
            *bytes.get(at + 3)?,
        ]));
        // Start of frame: any SOFn but DHT (c4), JPG (c8) and DAC (cc). Only baseline,
        // extended and progressive Huffman frames of 8-bit samples (SOF0-2) are what
        // every PDF reader's DCTDecode takes; anything else is re-encoded by the caller.
        if matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
            let f = bytes.get(at + 4..at + 10)?;
            if marker > 0xc2 || f[0] != 8 {
                return None;
            }
            let height = u32::from(u16::from_be_bytes([f[1], f[2]]));
            let width = u32::from(u16::from_be_bytes([f[3], f[4]]));
            return Some((width, height, f[5]));
        }
        if marker == 0xda || len < 2 {
            return None;
        }
        at += 2 + len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_words_are_cut_and_lines_fit() {
        let mut l = Layout::new();
        let hash = "ab".repeat(64);
        let text = format!("SHA-256 {hash} and some words after it\nsecond line");
        let lines = l.wrap(&text, Style::BODY, 200.0);
        assert!(lines.len() >= 4, "{}", lines.len());
        for line in &lines {
            assert!(Style::BODY.font.text_width(line, Style::BODY.size) <= 200.0);
        }
        let joined: Vec<u8> = lines.concat();
        assert!(joined.windows(4).any(|w| w == b"abab"));
        assert_eq!(lines.last().unwrap(), b"second line");
        // Nothing lost but the newline and the one space a break took.
        let kept: usize = lines.iter().map(|l| l.len()).sum();
        let shown: Vec<String> = lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        assert_eq!(kept + 1, text.len() - 1, "{shown:#?}");
    }

    #[test]
    fn characters_the_font_lacks_are_counted() {
        let mut l = Layout::new();
        assert_eq!(l.encode("caf\u{e9} \u{4e2d}\u{6587}\t!"), b"caf\xe9 ?? !");
        assert_eq!(l.replaced, 2);
    }

    #[test]
    fn a_pdf_with_many_pages_is_made() {
        let mut l = Layout::new();
        l.heading(0, "Title");
        for i in 0..400 {
            l.field("Item", &format!("line {i}"), Style::BODY);
        }
        assert!(l.page_count() > 3);
        let pdf = l.finish("t", "footer", Utc::now());
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(pdf.ends_with(b"%%EOF") || pdf.ends_with(b"%%EOF\n"));
    }

    #[test]
    fn jpeg_frames_are_read() {
        assert_eq!(jpeg_frame(b"not a jpeg"), None);
        assert_eq!(jpeg_frame(&[0xff, 0xd8, 0xff]), None);
        let mut img = image::RgbImage::new(33, 21);
        img.put_pixel(1, 1, image::Rgb([200, 10, 10]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        assert_eq!(jpeg_frame(out.get_ref()), Some((33, 21, 3)));
    }
}
