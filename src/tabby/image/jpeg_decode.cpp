// JPEG decoding through libjpeg(-turbo), including DCT-domain downscaling.
//
// libjpeg reports fatal errors by calling error_exit, which by default calls
// exit(). We replace it with a longjmp back into the decoder. To keep longjmp
// safe in C++, every libjpeg call runs inside a small "phase" function that
// owns no C++ objects; allocation and throwing happen between phases, in
// decode_jpeg, where a guard destroys the libjpeg state on every path out.
//
// libjpeg only *warns* about corrupt or truncated data and then pads the image
// with grey. A truncated photo must be refused, not trained on, so the
// corruption warnings are errors here.
//
// EXIF orientation is ignored on purpose: Keras (tf.io.decode_image) ignores
// it too, and a model must see what it will be served.
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "tabby/image/codecs.h"

namespace tabby::detail {

namespace {

// Real progressive files have about ten scans; thousands of tiny scans are a
// known way to make a small file take minutes to decode.
constexpr int kMaxScans = 1000;

struct JpegErrorManager {
  jpeg_error_mgr pub;  // first member: libjpeg hands back a pointer to it
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool corrupt;    // a corruption warning, not a fatal libjpeg error
  bool truncated;  // the data ended early
};

struct JpegProgress {
  jpeg_progress_mgr pub;  // first member, as above
};

[[noreturn]] void fail_with_message(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}

void on_error_exit(j_common_ptr cinfo) { fail_with_message(cinfo); }

// Warnings that mean the pixel data is damaged. Others (unknown JFIF revision,
// a bad ICC profile, odd Adobe transform codes) leave the image intact.
bool is_corruption_warning(j_common_ptr cinfo, char* scratch) {
  const jpeg_error_mgr& err = *cinfo->err;
  switch (err.msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_BOGUS_PROGRESSION:
      return true;
    case JWRN_EXTRANEOUS_DATA:
      // Junk between the last scan and the end-of-image marker is common in
      // real photo sets (PetImages has many) and harms no pixel; junk before
      // any other marker means a scan was damaged.
      return err.msg_parm.i[1] != 0xD9;
    default:
      // Codes whose enum value depends on how jerror.h is configured (bad
      // arithmetic code) are recognised by their text.
      (*err.format_message)(cinfo, scratch);
      return std::strncmp(scratch, "Corrupt JPEG data", 17) == 0 && std::strstr(scratch, "ICC") == nullptr;
  }
}

void on_emit_message(j_common_ptr cinfo, int msg_level) {
  if (msg_level >= 0) return;  // trace messages
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  if (!is_corruption_warning(cinfo, err->message)) return;
  err->corrupt = true;
  err->truncated = cinfo->err->msg_code == JWRN_JPEG_EOF;
  fail_with_message(cinfo);
}

void on_output_message(j_common_ptr) {}  // never print to stderr

void on_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  auto* dinfo = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (dinfo->input_scan_number > kMaxScans) {
    auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
    std::snprintf(err->message, sizeof err->message, "more than %d progressive scans", kMaxScans);
    longjmp(err->jump, 1);
  }
}

// All libjpeg state of one decode; plain C data, safe to longjmp over.
struct JpegState {
  jpeg_decompress_struct cinfo;
  JpegErrorManager err;
  JpegProgress progress;
  bool created;
};

// Destroys the libjpeg state whichever way decode_jpeg is left.
struct JpegGuard {
  JpegState* state;
  ~JpegGuard() {
    if (state->created) jpeg_destroy_decompress(&state->cinfo);
  }
};

bool phase_read_header(JpegState* s, const uint8_t* data, size_t size) {
  s->cinfo.err = jpeg_std_error(&s->err.pub);
  s->err.pub.error_exit = on_error_exit;
  s->err.pub.emit_message = on_emit_message;
  s->err.pub.output_message = on_output_message;
  if (setjmp(s->err.jump)) return false;
  jpeg_create_decompress(&s->cinfo);
  s->created = true;
  s->progress.pub.progress_monitor = on_progress;
  s->cinfo.progress = &s->progress.pub;
  jpeg_mem_src(&s->cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&s->cinfo, TRUE);
  return true;
}

// Picks the output colour space and the largest 1/2^k reduction that keeps
// the decoded image at least target_width x target_height.
bool phase_choose_output(JpegState* s, int target_width, int target_height) {
  if (setjmp(s->err.jump)) return false;
  jpeg_decompress_struct& c = s->cinfo;
  // CMYK cannot be converted by libjpeg; we do it ourselves, below.
  c.out_color_space = (c.jpeg_color_space == JCS_CMYK || c.jpeg_color_space == JCS_YCCK) ? JCS_CMYK : JCS_RGB;
  c.scale_num = 1;
  c.scale_denom = 1;
  if (target_width > 0 && target_height > 0) {
    for (unsigned denom : {8u, 4u, 2u}) {
      c.scale_denom = denom;
      jpeg_calc_output_dimensions(&c);
      if (c.output_width >= static_cast<JDIMENSION>(target_width) &&
          c.output_height >= static_cast<JDIMENSION>(target_height)) {
        return true;
      }
    }
    c.scale_denom = 1;
  }
  jpeg_calc_output_dimensions(&c);
  return true;
}

// Adobe applications write CMYK JPEGs inverted (0 = full ink); libjpeg keeps
// the stored values, and the Adobe marker tells us which convention is used.
void cmyk_row_to_rgb(const uint8_t* cmyk, uint8_t* rgb, int width, bool inverted) {
  for (int x = 0; x < width; ++x, cmyk += 4, rgb += 3) {
    unsigned c = cmyk[0], m = cmyk[1], y = cmyk[2], k = cmyk[3];
    if (!inverted) {
      c = 255 - c;
      m = 255 - m;
      y = 255 - y;
      k = 255 - k;
    }
    rgb[0] = static_cast<uint8_t>((c * k + 127) / 255);
    rgb[1] = static_cast<uint8_t>((m * k + 127) / 255);
    rgb[2] = static_cast<uint8_t>((y * k + 127) / 255);
  }
}

bool phase_decode(JpegState* s, Image* image, uint8_t* cmyk_row) {
  if (setjmp(s->err.jump)) return false;
  jpeg_decompress_struct& c = s->cinfo;
  jpeg_start_decompress(&c);
  const bool cmyk = c.out_color_space == JCS_CMYK;
  const bool inverted = c.saw_Adobe_marker != 0;
  if (c.output_width != static_cast<JDIMENSION>(image->width) ||
      c.output_height != static_cast<JDIMENSION>(image->height) || c.output_components != (cmyk ? 4 : 3)) {
    std::snprintf(s->err.message, sizeof s->err.message, "unexpected output layout");
    return false;
  }
  while (c.output_scanline < c.output_height) {
    const int y = static_cast<int>(c.output_scanline);
    JSAMPROW row = cmyk ? cmyk_row : image->row(y);
    if (jpeg_read_scanlines(&c, &row, 1) != 1) {
      // Only a suspending data source returns 0 rows; the memory source never
      // does, but never loop forever on it.
      std::snprintf(s->err.message, sizeof s->err.message, "Premature end of JPEG file");
      s->err.truncated = true;
      return false;
    }
    if (cmyk) cmyk_row_to_rgb(cmyk_row, image->row(y), image->width, inverted);
  }
  // Not jpeg_finish_decompress: every pixel is in, and whatever follows the
  // last scan cannot change them.
  return true;
}

[[noreturn]] void throw_jpeg_error(const JpegState& s) {
  const std::string detail = std::string(" (libjpeg: ") + s.err.message + ")";
  if (s.err.truncated) throw DecodeError("truncated JPEG data" + detail);
  if (s.err.corrupt) throw DecodeError("corrupt JPEG data" + detail);
  throw DecodeError("invalid JPEG data" + detail);
}

}  // namespace

Image decode_jpeg(const uint8_t* data, size_t size, const DecodeOptions& options) {
  JpegState state;
  std::memset(&state, 0, sizeof state);
  JpegGuard guard{&state};

  if (!phase_read_header(&state, data, size)) throw_jpeg_error(state);
  check_dimensions(ImageFormat::Jpeg, state.cinfo.image_width, state.cinfo.image_height, options.max_pixels);
  if (!phase_choose_output(&state, options.target_width, options.target_height)) throw_jpeg_error(state);

  Image image(static_cast<int>(state.cinfo.output_width), static_cast<int>(state.cinfo.output_height));
  std::vector<uint8_t> cmyk_row;
  if (state.cinfo.out_color_space == JCS_CMYK) cmyk_row.resize(static_cast<size_t>(image.width) * 4);
  if (!phase_decode(&state, &image, cmyk_row.data())) throw_jpeg_error(state);
  return image;
}

bool probe_jpeg(const uint8_t* data, size_t size, ImageInfo* info) {
  // Walk the marker segments after SOI up to the first frame header (SOFn).
  size_t pos = 2;
  while (true) {
    if (pos >= size) return false;
    if (data[pos] != 0xFF) throw DecodeError("corrupt JPEG header (expected a marker)");
    while (pos < size && data[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= size) return false;
    const uint8_t marker = data[pos++];
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length
    if (marker == 0xD9 || marker == 0xDA) throw DecodeError("corrupt JPEG header (no frame header)");
    if (pos + 2 > size) return false;
    const uint16_t length = load_be16(data + pos);
    if (length < 2) throw DecodeError("corrupt JPEG header (bad segment length)");
    const bool is_frame = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (is_frame) {
      if (length < 8) throw DecodeError("corrupt JPEG header (short frame header)");
      if (pos + 7 > size) return false;
      info->height = load_be16(data + pos + 3);
      info->width = load_be16(data + pos + 5);
      if (info->width == 0 || info->height == 0) {
        throw DecodeError("invalid JPEG image size " + std::to_string(info->width) + "x" +
                          std::to_string(info->height));
      }
      return true;
    }
    pos += length;
  }
}

}  // namespace tabby::detail
