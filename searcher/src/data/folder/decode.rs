//! One image file to the target shape: decode (PNG or JPEG, told apart by
//! content), convert the channels, resize the shorter side, centre-crop.

use std::io::Cursor;
use std::path::Path;

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, ImageFormat, Pixel};

use super::{FolderError, ImageShape};

/// Decodes `path` and returns `height · width · channels` HWC bytes.
///
/// The format is taken from the content, not the extension, so a JPEG
/// saved as `.png` still loads; content that is neither is an error.
pub(super) fn decode_file(path: &Path, target: ImageShape) -> Result<Vec<u8>, FolderError> {
    let bytes = std::fs::read(path).map_err(|source| FolderError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let format = match image::guess_format(&bytes) {
        Ok(f @ (ImageFormat::Png | ImageFormat::Jpeg)) => f,
        _ => {
            return Err(FolderError::NotAnImage {
                path: path.to_path_buf(),
                bytes: bytes.len() as u64,
            });
        }
    };
    let image = image::io::Reader::with_format(Cursor::new(&bytes), format)
        .decode()
        .map_err(|source| FolderError::BadImage {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(fit(&image, target))
}

/// Converts to the target's channels (grey is replicated to RGB; RGB
/// becomes grey by Rec. 709 luma; alpha is dropped), then resizes.
pub(super) fn fit(image: &DynamicImage, target: ImageShape) -> Vec<u8> {
    if target.channels == 1 {
        resize_fill(&image.to_luma8(), target)
    } else {
        resize_fill(&image.to_rgb8(), target)
    }
}

/// The size an image of `from_h × from_w` is scaled to so that it covers
/// `to_h × to_w` with its aspect ratio kept: the side that is shorter
/// relative to the target lands exactly on it.
pub(super) fn cover_size(from_h: usize, from_w: usize, to_h: usize, to_w: usize) -> (usize, usize) {
    let scale = f64::max(to_h as f64 / from_h as f64, to_w as f64 / from_w as f64);
    let h = ((from_h as f64 * scale).round() as usize).max(to_h);
    let w = ((from_w as f64 * scale).round() as usize).max(to_w);
    (h, w)
}

/// Scales (triangle filter, which widens with the shrink factor and so
/// averages the covered area when shrinking) to cover the target, then
/// keeps the centre. An image already of the target size is copied as is.
fn resize_fill<P>(image: &ImageBuffer<P, Vec<u8>>, target: ImageShape) -> Vec<u8>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    let (w, h) = (image.width() as usize, image.height() as usize);
    if (h, w) == (target.height, target.width) {
        return image.as_raw().clone();
    }
    let (sh, sw) = cover_size(h, w, target.height, target.width);
    let scaled = if (sh, sw) == (h, w) {
        image.clone()
    } else {
        imageops::resize(image, sw as u32, sh as u32, FilterType::Triangle)
    };
    let (x0, y0) = ((sw - target.width) / 2, (sh - target.height) / 2);
    imageops::crop_imm(
        &scaled,
        x0 as u32,
        y0 as u32,
        target.width as u32,
        target.height as u32,
    )
    .to_image()
    .into_raw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    fn shape(height: usize, width: usize, channels: usize) -> ImageShape {
        ImageShape {
            height,
            width,
            channels,
        }
    }

    #[test]
    fn cover_size_lands_the_shorter_side_on_the_target() {
        assert_eq!(cover_size(30, 40, 32, 32), (32, 43));
        assert_eq!(cover_size(40, 30, 32, 32), (43, 32));
        assert_eq!(cover_size(64, 64, 32, 32), (32, 32));
        assert_eq!(cover_size(10, 100, 20, 10), (20, 200));
    }

    #[test]
    fn same_size_is_copied_exactly() {
        let img = GrayImage::from_fn(5, 3, |x, y| Luma([(x * 10 + y) as u8]));
        let out = fit(&DynamicImage::ImageLuma8(img.clone()), shape(3, 5, 1));
        assert_eq!(out, img.into_raw());
    }

    #[test]
    fn grey_is_replicated_and_rgb_becomes_luma() {
        let grey = GrayImage::from_pixel(2, 2, Luma([77]));
        let out = fit(&DynamicImage::ImageLuma8(grey), shape(2, 2, 3));
        assert_eq!(out, vec![77; 12]);
        let red = RgbImage::from_pixel(2, 2, Rgb([255, 0, 0]));
        let out = fit(&DynamicImage::ImageRgb8(red), shape(2, 2, 1));
        // Rec. 709: 0.2126 · 255.
        assert_eq!(out, vec![54; 4]);
    }

    #[test]
    fn wide_image_keeps_its_centre_and_halving_averages() {
        // 8 wide, 4 high; left quarter black, centre white, right quarter black.
        let img = GrayImage::from_fn(8, 4, |x, _| {
            Luma([if (2..6).contains(&x) { 200 } else { 0 }])
        });
        let out = fit(&DynamicImage::ImageLuma8(img), shape(2, 2, 1));
        // Halved to 4x2, then the centre 2x2 is the white band.
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|&v| v > 150), "{out:?}");
        // A uniform image stays uniform through any resize.
        let flat = RgbImage::from_pixel(40, 30, Rgb([10, 20, 30]));
        let out = fit(&DynamicImage::ImageRgb8(flat), shape(32, 32, 3));
        assert_eq!(out.len(), 32 * 32 * 3);
        assert!(out.chunks(3).all(|p| p == [10, 20, 30]));
    }
}
