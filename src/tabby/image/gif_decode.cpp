// GIF decoding through giflib: the first frame only (as Keras, which asks
// TensorFlow for still images), drawn onto the logical screen.
//
// The canvas is the logical screen size (the size viewers show); when a file
// declares a 0x0 screen, the first frame's extent is used instead. Parts of
// the frame outside the canvas are clipped. Pixels the frame does not cover
// and transparent pixels are black, as in TensorFlow's decode_gif.
//
// Without giflib (TABBY_HAVE_GIF undefined) GIFs are recognised and refused.
#include <cstring>
#include <string>
#include <vector>

#include "tabby/image/codecs.h"

#ifdef TABBY_HAVE_GIF
#include <gif_lib.h>
#endif

namespace tabby::detail {

namespace {

// Canvas size from the header, falling back to the first frame's extent.
// Returns false when the data ends before it is known.
bool gif_canvas_size(const uint8_t* data, size_t size, int* width, int* height) {
  if (size < 13) return false;
  *width = load_le16(data + 6);
  *height = load_le16(data + 8);
  if (*width > 0 && *height > 0) return true;
  size_t pos = 13;
  if (data[10] & 0x80) pos += 3u * (2u << (data[10] & 7));  // global colour table
  while (true) {
    if (pos >= size) return false;
    const uint8_t block = data[pos];
    if (block == 0x21) {  // extension: label, then sub-blocks up to a 0 length
      pos += 2;
      while (true) {
        if (pos >= size) return false;
        if (data[pos] == 0) break;
        pos += data[pos] + 1u;
      }
      ++pos;
    } else if (block == 0x2C) {  // image descriptor
      if (pos + 9 > size) return false;
      *width = load_le16(data + pos + 1) + load_le16(data + pos + 5);
      *height = load_le16(data + pos + 3) + load_le16(data + pos + 7);
      return true;
    } else if (block == 0x3B) {
      throw DecodeError("GIF without any image");
    } else {
      throw DecodeError("corrupt GIF data (unknown block type)");
    }
  }
}

}  // namespace

bool probe_gif(const uint8_t* data, size_t size, ImageInfo* info) {
  int width = 0, height = 0;
  if (!gif_canvas_size(data, size, &width, &height)) return false;
  if (width <= 0 || height <= 0) {
    throw DecodeError("invalid GIF image size " + std::to_string(width) + "x" + std::to_string(height));
  }
  info->width = width;
  info->height = height;
  return true;
}

#ifndef TABBY_HAVE_GIF

Image decode_gif(const uint8_t*, size_t, const DecodeOptions&) {
  throw DecodeError("GIF images cannot be read: tabby was built without GIF support",
                    "rebuild tabby with giflib installed (libgif-dev), or convert the image to PNG");
}

#else

namespace {

struct GifReader {
  const uint8_t* data;
  size_t size;
  size_t pos;
  bool hit_end;
};

int on_gif_read(GifFileType* gif, GifByteType* out, int count) {
  auto* reader = static_cast<GifReader*>(gif->UserData);
  if (count <= 0) return 0;
  size_t n = static_cast<size_t>(count);
  if (n > reader->size - reader->pos) {
    n = reader->size - reader->pos;
    reader->hit_end = true;
  }
  std::memcpy(out, reader->data + reader->pos, n);
  reader->pos += n;
  return static_cast<int>(n);
}

struct GifGuard {
  GifFileType* gif = nullptr;
  ~GifGuard() {
    int ignored = 0;
    if (gif != nullptr) DGifCloseFile(gif, &ignored);
  }
};

[[noreturn]] void throw_gif_error(int code, const GifReader& reader) {
  if (reader.hit_end) throw DecodeError("truncated GIF data");
  const char* message = GifErrorString(code);
  throw DecodeError(std::string("invalid GIF data (giflib: ") + (message ? message : "unknown error") + ")");
}

// The transparent colour index a graphic control extension sets, or -1.
int transparent_index(const GifByteType* block) {
  // block[0] is the length (4): flags, delay (2 bytes), transparent index.
  if (block == nullptr || block[0] < 4) return -1;
  return (block[1] & 1) ? block[4] : -1;
}

}  // namespace

Image decode_gif(const uint8_t* data, size_t size, const DecodeOptions& options) {
  int canvas_width = 0, canvas_height = 0;
  if (!gif_canvas_size(data, size, &canvas_width, &canvas_height)) throw DecodeError("truncated GIF data");
  check_dimensions(ImageFormat::Gif, canvas_width, canvas_height, options.max_pixels);

  GifReader reader{data, size, 0, false};
  GifGuard guard;
  int error = 0;
  guard.gif = DGifOpen(&reader, on_gif_read, &error);
  if (guard.gif == nullptr) throw_gif_error(error, reader);
  GifFileType* gif = guard.gif;

  // Records up to the first image: extensions (keep the last transparency).
  int transparent = -1;
  while (true) {
    GifRecordType record = UNDEFINED_RECORD_TYPE;
    if (DGifGetRecordType(gif, &record) == GIF_ERROR) throw_gif_error(gif->Error, reader);
    if (record == IMAGE_DESC_RECORD_TYPE) break;
    if (record == TERMINATE_RECORD_TYPE) throw DecodeError("GIF without any image");
    if (record != EXTENSION_RECORD_TYPE) throw DecodeError("corrupt GIF data (unknown record type)");
    int code = 0;
    GifByteType* block = nullptr;
    if (DGifGetExtension(gif, &code, &block) == GIF_ERROR) throw_gif_error(gif->Error, reader);
    if (code == GRAPHICS_EXT_FUNC_CODE) transparent = transparent_index(block);
    while (block != nullptr) {
      if (DGifGetExtensionNext(gif, &block) == GIF_ERROR) throw_gif_error(gif->Error, reader);
    }
  }

  if (DGifGetImageDesc(gif) == GIF_ERROR) throw_gif_error(gif->Error, reader);
  const GifImageDesc& frame = gif->Image;
  // The frame is decoded whole even where clipped: bound its cost too.
  check_dimensions(ImageFormat::Gif, frame.Width, frame.Height, options.max_pixels);
  const ColorMapObject* colors = frame.ColorMap != nullptr ? frame.ColorMap : gif->SColorMap;
  if (colors == nullptr || colors->Colors == nullptr) throw DecodeError("corrupt GIF data (no colour table)");

  Image image(canvas_width, canvas_height);  // black: uncovered and transparent pixels stay so
  std::vector<GifPixelType> line(static_cast<size_t>(frame.Width));

  // Interlaced frames store rows in four passes: every 8th row from 0, every
  // 8th from 4, every 4th from 2, every 2nd from 1.
  static constexpr int kPassStart[4] = {0, 4, 2, 1};
  static constexpr int kPassStep[4] = {8, 8, 4, 2};
  const int passes = frame.Interlace ? 4 : 1;
  for (int pass = 0; pass < passes; ++pass) {
    const int start = frame.Interlace ? kPassStart[pass] : 0;
    const int step = frame.Interlace ? kPassStep[pass] : 1;
    for (int row = start; row < frame.Height; row += step) {
      if (DGifGetLine(gif, line.data(), frame.Width) == GIF_ERROR) throw_gif_error(gif->Error, reader);
      const int y = frame.Top + row;
      if (y >= canvas_height) continue;
      uint8_t* dst = image.row(y);
      for (int col = 0; col < frame.Width; ++col) {
        const int x = frame.Left + col;
        if (x >= canvas_width) break;
        const int index = line[static_cast<size_t>(col)];
        if (index == transparent || index >= colors->ColorCount) continue;
        const GifColorType& c = colors->Colors[index];
        dst[x * 3 + 0] = c.Red;
        dst[x * 3 + 1] = c.Green;
        dst[x * 3 + 2] = c.Blue;
      }
    }
  }
  return image;
}

#endif  // TABBY_HAVE_GIF

}  // namespace tabby::detail
