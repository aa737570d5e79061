// PNG and JPEG encoding through libpng and libjpeg, into memory.
//
// Both libraries report errors by longjmp (the hooks we install), so, as in
// the decoders, library calls run in "phase" functions that own no C++
// objects, output goes to a malloc'd buffer a guard frees, and the result is
// copied into a std::string once the library is done.
#include "support/image_encode.h"

#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <jerror.h>
#include <jpeglib.h>

#include "tabby/util/error.h"

namespace tabby {

namespace {

// A growable C buffer (no exceptions can come out of it).
struct ByteBuffer {
  uint8_t* data;
  size_t size;
  size_t capacity;
};

bool reserve(ByteBuffer* b, size_t needed) {
  if (needed <= b->capacity) return true;
  size_t capacity = std::max<size_t>(b->capacity * 2, 64 * 1024);
  while (capacity < needed) capacity *= 2;
  auto* grown = static_cast<uint8_t*>(std::realloc(b->data, capacity));
  if (grown == nullptr) return false;
  b->data = grown;
  b->capacity = capacity;
  return true;
}

struct BufferGuard {
  ByteBuffer* buffer;
  ~BufferGuard() { std::free(buffer->data); }
};

void check_encodable(const Image& image, const char* format) {
  if (image.empty() || image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3) {
    throw Error(std::string("cannot encode an empty or malformed image as ") + format);
  }
}

// ---- PNG --------------------------------------------------------------------

struct PngWriteState {
  png_structp png;
  png_infop info;
  ByteBuffer out;
  char message[200];
};

void on_png_error(png_structp png, png_const_charp message) {
  auto* state = static_cast<PngWriteState*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof state->message, "%s", message ? message : "unknown error");
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}

void on_png_write(png_structp png, png_bytep data, png_size_t count) {
  auto* state = static_cast<PngWriteState*>(png_get_io_ptr(png));
  if (!reserve(&state->out, state->out.size + count)) png_error(png, "out of memory");
  std::memcpy(state->out.data + state->out.size, data, count);
  state->out.size += count;
}

void on_png_flush(png_structp) {}

bool png_write_phase(PngWriteState* s, int width, int height, png_bytepp rows) {
  s->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, s, on_png_error, on_png_warning);
  if (s->png == nullptr) return false;
  s->info = png_create_info_struct(s->png);
  if (s->info == nullptr) return false;
  if (setjmp(png_jmpbuf(s->png))) return false;
  png_set_write_fn(s->png, s, on_png_write, on_png_flush);
  png_set_IHDR(s->png, s->info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(s->png, 6);
  png_write_info(s->png, s->info);
  png_write_image(s->png, rows);
  png_write_end(s->png, nullptr);
  return true;
}

// ---- JPEG -------------------------------------------------------------------

struct JpegWriteError {
  jpeg_error_mgr pub;  // first member: libjpeg hands back a pointer to it
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

struct JpegDestination {
  jpeg_destination_mgr pub;  // first member, as above
  ByteBuffer out;
};

struct JpegWriteState {
  jpeg_compress_struct cinfo;
  JpegWriteError err;
  JpegDestination dest;
  bool created;
};

void on_jpeg_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegWriteError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}

void on_jpeg_output_message(j_common_ptr) {}

// The whole buffer is handed to libjpeg; `size` is fixed at the end.
void dest_init(j_compress_ptr cinfo) {
  auto* dest = reinterpret_cast<JpegDestination*>(cinfo->dest);
  if (!reserve(&dest->out, 64 * 1024)) ERREXIT(cinfo, JERR_OUT_OF_MEMORY);
  dest->pub.next_output_byte = dest->out.data;
  dest->pub.free_in_buffer = dest->out.capacity;
}

boolean dest_empty(j_compress_ptr cinfo) {
  auto* dest = reinterpret_cast<JpegDestination*>(cinfo->dest);
  const size_t used = dest->out.capacity;  // libjpeg filled all of it
  if (!reserve(&dest->out, used * 2)) ERREXIT(cinfo, JERR_OUT_OF_MEMORY);
  dest->pub.next_output_byte = dest->out.data + used;
  dest->pub.free_in_buffer = dest->out.capacity - used;
  return TRUE;
}

void dest_term(j_compress_ptr cinfo) {
  auto* dest = reinterpret_cast<JpegDestination*>(cinfo->dest);
  dest->out.size = dest->out.capacity - dest->pub.free_in_buffer;
}

struct JpegWriteGuard {
  JpegWriteState* state;
  ~JpegWriteGuard() {
    if (state->created) jpeg_destroy_compress(&state->cinfo);
    std::free(state->dest.out.data);
  }
};

bool jpeg_write_phase(JpegWriteState* s, const Image* image, int quality) {
  s->cinfo.err = jpeg_std_error(&s->err.pub);
  s->err.pub.error_exit = on_jpeg_error;
  s->err.pub.output_message = on_jpeg_output_message;
  if (setjmp(s->err.jump)) return false;
  jpeg_create_compress(&s->cinfo);
  s->created = true;
  s->dest.pub.init_destination = dest_init;
  s->dest.pub.empty_output_buffer = dest_empty;
  s->dest.pub.term_destination = dest_term;
  s->cinfo.dest = &s->dest.pub;
  s->cinfo.image_width = static_cast<JDIMENSION>(image->width);
  s->cinfo.image_height = static_cast<JDIMENSION>(image->height);
  s->cinfo.input_components = 3;
  s->cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&s->cinfo);
  jpeg_set_quality(&s->cinfo, quality, TRUE);
  jpeg_start_compress(&s->cinfo, TRUE);
  while (s->cinfo.next_scanline < s->cinfo.image_height) {
    // libjpeg does not write through the row pointer; its API is not const.
    JSAMPROW row = const_cast<uint8_t*>(image->row(static_cast<int>(s->cinfo.next_scanline)));
    jpeg_write_scanlines(&s->cinfo, &row, 1);
  }
  jpeg_finish_compress(&s->cinfo);
  return true;
}

}  // namespace

std::string encode_png(const Image& image) {
  check_encodable(image, "PNG");
  PngWriteState state;
  std::memset(&state, 0, sizeof state);
  BufferGuard buffer_guard{&state.out};
  struct Guard {
    PngWriteState* s;
    ~Guard() {
      if (s->png != nullptr) png_destroy_write_struct(&s->png, &s->info);
    }
  } guard{&state};

  std::vector<png_bytep> rows(static_cast<size_t>(image.height));
  for (int y = 0; y < image.height; ++y) rows[static_cast<size_t>(y)] = const_cast<uint8_t*>(image.row(y));
  if (!png_write_phase(&state, image.width, image.height, rows.data())) {
    throw Error(std::string("cannot encode PNG: ") + (state.message[0] ? state.message : "libpng failed"));
  }
  return std::string(reinterpret_cast<const char*>(state.out.data), state.out.size);
}

std::string encode_jpeg(const Image& image, int quality) {
  check_encodable(image, "JPEG");
  if (image.width > JPEG_MAX_DIMENSION || image.height > JPEG_MAX_DIMENSION) {
    throw Error("cannot encode JPEG: " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                " exceeds the format's limit of " + std::to_string(JPEG_MAX_DIMENSION) + " pixels a side");
  }
  quality = std::clamp(quality, 1, 100);
  JpegWriteState state;
  std::memset(&state, 0, sizeof state);
  JpegWriteGuard guard{&state};
  if (!jpeg_write_phase(&state, &image, quality)) {
    throw Error(std::string("cannot encode JPEG: ") + state.err.message);
  }
  return std::string(reinterpret_cast<const char*>(state.dest.out.data), state.dest.out.size);
}

}  // namespace tabby
