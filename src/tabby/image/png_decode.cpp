// PNG decoding through libpng: every colour type and bit depth, interlaced or
// not, becomes 8-bit RGB.
//
// libpng reports errors by longjmp to a buffer we set with setjmp. As in the
// JPEG decoder, each libpng call runs inside a "phase" function that owns no
// C++ objects, and decode_png allocates and throws between phases.
//
// Alpha is dropped, not composited: that is what TensorFlow's
// decode_image(channels=3) does, and what Keras models were trained on.
// 16-bit samples keep their high byte (libpng's strip_16, as TensorFlow).
// Gamma and colour-profile chunks are ignored, as in TensorFlow.
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tabby/image/codecs.h"

namespace tabby::detail {

namespace {

// All libpng state of one decode; plain C data, safe to longjmp over.
struct PngState {
  png_structp png;
  png_infop info;
  const uint8_t* data;
  size_t size;
  size_t pos;
  bool truncated;
  char message[200];
};

struct PngGuard {
  PngState* state;
  ~PngGuard() {
    if (state->png != nullptr) png_destroy_read_struct(&state->png, &state->info, nullptr);
  }
};

void on_png_error(png_structp png, png_const_charp message) {
  auto* state = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof state->message, "%s", message ? message : "unknown error");
  png_longjmp(png, 1);
}

// Warnings (bad CRC in an ancillary chunk, unknown sRGB profile...) leave the
// pixels intact; libpng would print them on stderr.
void on_png_warning(png_structp, png_const_charp) {}

void on_png_read(png_structp png, png_bytep out, png_size_t count) {
  auto* state = static_cast<PngState*>(png_get_io_ptr(png));
  if (count > state->size - state->pos) {
    state->truncated = true;
    png_error(png, "unexpected end of data");
  }
  std::memcpy(out, state->data + state->pos, count);
  state->pos += count;
}

bool phase_read_info(PngState* s) {
  s->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, on_png_error, on_png_warning);
  if (s->png == nullptr) {
    std::snprintf(s->message, sizeof s->message, "cannot create the PNG reader");
    return false;
  }
  s->info = png_create_info_struct(s->png);
  if (s->info == nullptr) {
    std::snprintf(s->message, sizeof s->message, "cannot create the PNG reader");
    return false;
  }
  if (setjmp(png_jmpbuf(s->png))) return false;
  png_set_read_fn(s->png, s, on_png_read);
  png_read_info(s->png, s->info);
  return true;
}

bool phase_set_transforms(PngState* s) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  png_structp png = s->png;
  png_set_expand(png);  // palette -> RGB, grey below 8 bits -> 8 bits, tRNS -> alpha
  png_set_strip_16(png);
  png_set_strip_alpha(png);
  png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, s->info);
  if (png_get_channels(png, s->info) != 3 || png_get_bit_depth(png, s->info) != 8) {
    std::snprintf(s->message, sizeof s->message, "unsupported pixel layout");
    return false;
  }
  return true;
}

bool phase_read_image(PngState* s, png_bytepp rows) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  png_read_image(s->png, rows);
  // Not png_read_end: every pixel is in; what follows cannot change them.
  return true;
}

[[noreturn]] void throw_png_error(const PngState& s) {
  if (s.truncated) throw DecodeError("truncated PNG data");
  const std::string detail = std::string(" (libpng: ") + s.message + ")";
  if (std::strstr(s.message, "CRC") != nullptr) throw DecodeError("corrupt PNG data" + detail);
  throw DecodeError("invalid PNG data" + detail);
}

}  // namespace

Image decode_png(const uint8_t* data, size_t size, const DecodeOptions& options) {
  PngState state;
  std::memset(&state, 0, sizeof state);
  state.data = data;
  state.size = size;
  PngGuard guard{&state};

  if (!phase_read_info(&state)) throw_png_error(state);
  check_dimensions(ImageFormat::Png, png_get_image_width(state.png, state.info),
                   png_get_image_height(state.png, state.info), options.max_pixels);
  if (!phase_set_transforms(&state)) throw_png_error(state);
  if (png_get_rowbytes(state.png, state.info) != static_cast<size_t>(png_get_image_width(state.png, state.info)) * 3) {
    throw DecodeError("invalid PNG data (unexpected row size)");
  }

  Image image(static_cast<int>(png_get_image_width(state.png, state.info)),
              static_cast<int>(png_get_image_height(state.png, state.info)));
  std::vector<png_bytep> rows(static_cast<size_t>(image.height));
  for (int y = 0; y < image.height; ++y) rows[static_cast<size_t>(y)] = image.row(y);
  if (!phase_read_image(&state, rows.data())) throw_png_error(state);
  return image;
}

bool probe_png(const uint8_t* data, size_t size, ImageInfo* info) {
  // Signature (8 bytes), then the IHDR chunk: length, "IHDR", width, height.
  if (size < 24) return false;
  if (std::memcmp(data + 12, "IHDR", 4) != 0) throw DecodeError("corrupt PNG header (IHDR chunk missing)");
  const uint32_t width = load_be32(data + 16);
  const uint32_t height = load_be32(data + 20);
  if (width == 0 || height == 0 || width > 0x7FFFFFFFu || height > 0x7FFFFFFFu) {
    throw DecodeError("invalid PNG image size " + std::to_string(width) + "x" + std::to_string(height));
  }
  info->width = static_cast<int>(width);
  info->height = static_cast<int>(height);
  return true;
}

}  // namespace tabby::detail
