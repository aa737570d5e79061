// Format sniffing, dispatch to the per-format decoders, file reading, and the
// one error type every failure becomes.
#include "tabby/image/decode.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "tabby/image/codecs.h"

namespace tabby {

namespace {

const char* const kDefaultHint =
    "the file is damaged or not a supported image (JPEG, PNG, BMP, GIF): replace or remove it";

bool starts_with(const uint8_t* data, size_t size, const char* magic, size_t n, size_t at = 0) {
  return size >= at + n && std::memcmp(data + at, magic, n) == 0;
}

// ISO base media files (HEIC, AVIF, but also MP4 video) start with an 'ftyp'
// box whose major brand names the content.
ImageFormat sniff_ftyp(const uint8_t* data, size_t size) {
  if (!starts_with(data, size, "ftyp", 4, 4) || size < 12) return ImageFormat::Unknown;
  const char* brand = reinterpret_cast<const char*>(data + 8);
  for (const char* b : {"avif", "avis"}) {
    if (std::memcmp(brand, b, 4) == 0) return ImageFormat::Avif;
  }
  for (const char* b : {"heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"}) {
    if (std::memcmp(brand, b, 4) == 0) return ImageFormat::Heic;
  }
  return ImageFormat::Unknown;
}

// "BM" alone is too weak a signature (a text file may start with it): also
// require one of the known DIB header sizes at offset 14.
bool looks_like_bmp(const uint8_t* data, size_t size) {
  if (!starts_with(data, size, "BM", 2) || size < 18) return false;
  const uint32_t dib = detail::load_le32(data + 14);
  for (uint32_t known : {12u, 16u, 40u, 52u, 56u, 64u, 108u, 124u}) {
    if (dib == known) return true;
  }
  return false;
}

std::string unsupported_reason(ImageFormat format) {
  return std::string(format_name(format)) + " images are not supported";
}

// Holds a file descriptor and closes it on every path out.
struct FileHandle {
  int fd = -1;
  ~FileHandle() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads at most `limit` bytes of a regular file. Sets *whole when the result
// is the complete file. Files over `max_file_bytes` are refused unread. Every
// failure is a DecodeError naming the path.
std::string read_image_bytes(const std::filesystem::path& path, size_t limit, bool* whole,
                             uint64_t max_file_bytes = UINT64_MAX) {
  FileHandle file;
  // O_NONBLOCK: opening a FIFO named like an image would otherwise wait
  // forever for a writer; regular files ignore the flag.
  file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (file.fd < 0) {
    const int err = errno;
    if (err == EISDIR) throw DecodeError::for_file(path, "is a directory, not a file");
    if (err == ENOENT) throw DecodeError::for_file(path, "file not found");
    throw DecodeError::for_file(path, std::string("cannot open file (") + std::strerror(err) + ")");
  }
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) {
    throw DecodeError::for_file(path, std::string("cannot read file (") + std::strerror(errno) + ")");
  }
  if (S_ISDIR(st.st_mode)) throw DecodeError::for_file(path, "is a directory, not a file");
  // FIFOs and devices could block forever or never end.
  if (!S_ISREG(st.st_mode)) throw DecodeError::for_file(path, "not a regular file");
  if (st.st_size == 0) throw DecodeError::for_file(path, "empty file");
  if (static_cast<uint64_t>(st.st_size) > max_file_bytes) {
    throw DecodeError::for_file(path,
                                "file too large (" + std::to_string(st.st_size) + " bytes, the limit is " +
                                    std::to_string(max_file_bytes) + ")",
                                "no photo is that large: the file is probably not an image; if it is, raise the "
                                "file size limit");
  }

  const size_t file_size = static_cast<size_t>(st.st_size);
  const size_t want = file_size < limit ? file_size : limit;
  std::string bytes(want, '\0');
  size_t got = 0;
  while (got < want) {
    const ssize_t n = ::read(file.fd, &bytes[got], want - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw DecodeError::for_file(path, std::string("cannot read file (") + std::strerror(errno) + ")");
    }
    if (n == 0) break;  // the file shrank while we read it
    got += static_cast<size_t>(n);
  }
  bytes.resize(got);
  if (got == 0) throw DecodeError::for_file(path, "empty file");
  *whole = got == file_size || got < want;
  return bytes;
}

// Returns true and fills *info when the header was complete.
bool probe_prefix(const uint8_t* data, size_t size, ImageInfo* info) {
  if (size == 0) throw DecodeError("empty file");
  info->format = sniff_format(data, size);
  switch (info->format) {
    case ImageFormat::Jpeg: return detail::probe_jpeg(data, size, info);
    case ImageFormat::Png: return detail::probe_png(data, size, info);
    case ImageFormat::Bmp: return detail::probe_bmp(data, size, info);
    case ImageFormat::Gif: return detail::probe_gif(data, size, info);
    case ImageFormat::Unknown: throw DecodeError("not an image (unrecognised content)");
    default: throw DecodeError(unsupported_reason(info->format), "convert it to JPEG or PNG");
  }
}

}  // namespace

DecodeError::DecodeError(const std::string& reason, std::string hint)
    : Error(reason, hint.empty() ? kDefaultHint : std::move(hint)), reason_(reason) {}

DecodeError::DecodeError(const std::string& what, const std::string& reason, std::string hint)
    : Error(what, hint.empty() ? kDefaultHint : std::move(hint)), reason_(reason) {}

DecodeError DecodeError::for_file(const std::filesystem::path& path, const std::string& reason, std::string hint) {
  return DecodeError("cannot decode '" + path.string() + "': " + reason, reason, std::move(hint));
}

const char* format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::Jpeg: return "JPEG";
    case ImageFormat::Png: return "PNG";
    case ImageFormat::Bmp: return "BMP";
    case ImageFormat::Gif: return "GIF";
    case ImageFormat::Webp: return "WebP";
    case ImageFormat::Tiff: return "TIFF";
    case ImageFormat::Heic: return "HEIC";
    case ImageFormat::Avif: return "AVIF";
    case ImageFormat::Ico: return "ICO";
    case ImageFormat::Jxl: return "JPEG XL";
    case ImageFormat::Jpeg2000: return "JPEG 2000";
    case ImageFormat::Unknown: break;
  }
  return "unknown";
}

bool is_decodable(ImageFormat format) {
  switch (format) {
    case ImageFormat::Jpeg:
    case ImageFormat::Png:
    case ImageFormat::Bmp:
      return true;
    case ImageFormat::Gif:
#ifdef TABBY_HAVE_GIF
      return true;
#else
      return false;
#endif
    default: return false;
  }
}

ImageFormat sniff_format(const uint8_t* data, size_t size) {
  if (data == nullptr) return ImageFormat::Unknown;
  if (starts_with(data, size, "\xFF\xD8\xFF", 3)) return ImageFormat::Jpeg;
  if (starts_with(data, size, "\x89PNG\r\n\x1A\n", 8)) return ImageFormat::Png;
  if (starts_with(data, size, "GIF87a", 6) || starts_with(data, size, "GIF89a", 6)) return ImageFormat::Gif;
  if (looks_like_bmp(data, size)) return ImageFormat::Bmp;
  if (starts_with(data, size, "RIFF", 4) && starts_with(data, size, "WEBP", 4, 8)) return ImageFormat::Webp;
  if (starts_with(data, size, "II*\0", 4) || starts_with(data, size, "MM\0*", 4) ||
      starts_with(data, size, "II+\0", 4) || starts_with(data, size, "MM\0+", 4)) {
    return ImageFormat::Tiff;
  }
  if (starts_with(data, size, "\xFF\x0A", 2) ||
      starts_with(data, size, "\0\0\0\x0CJXL \r\n\x87\n", 12)) {
    return ImageFormat::Jxl;
  }
  if (starts_with(data, size, "\0\0\0\x0CjP  \r\n\x87\n", 12) || starts_with(data, size, "\xFF\x4F\xFF\x51", 4)) {
    return ImageFormat::Jpeg2000;
  }
  // ICO: reserved 0, type 1, at least one entry.
  if (starts_with(data, size, "\0\0\1\0", 4) && size >= 6 && (data[4] | data[5]) != 0) return ImageFormat::Ico;
  return sniff_ftyp(data, size);
}

namespace detail {

void check_dimensions(ImageFormat format, int64_t width, int64_t height, uint64_t max_pixels) {
  if (width <= 0 || height <= 0 || width > INT32_MAX || height > INT32_MAX) {
    throw DecodeError(std::string("invalid ") + format_name(format) + " image size " + std::to_string(width) +
                      "x" + std::to_string(height));
  }
  const uint64_t pixels = static_cast<uint64_t>(width) * static_cast<uint64_t>(height);
  if (pixels > max_pixels) {
    throw DecodeError("image too large (" + std::to_string(width) + "x" + std::to_string(height) +
                          " pixels, the limit is " + std::to_string(max_pixels) + ")",
                      "the file may be a decompression bomb; if it is genuine, raise the pixel limit");
  }
}

}  // namespace detail

ImageInfo probe_image(const uint8_t* data, size_t size) {
  ImageInfo info;
  if (!probe_prefix(data, size, &info)) {
    throw DecodeError(std::string("truncated ") + format_name(info.format) + " header");
  }
  return info;
}

ImageInfo probe_image_file(const std::filesystem::path& path) {
  // Most headers sit in the first few KB; a JPEG with a big EXIF block (or a
  // GIF with many extensions before its first frame) may need more.
  constexpr size_t kFirstRead = 64 * 1024;
  try {
    bool whole = false;
    std::string bytes = read_image_bytes(path, kFirstRead, &whole);
    ImageInfo info;
    auto data = reinterpret_cast<const uint8_t*>(bytes.data());
    if (probe_prefix(data, bytes.size(), &info)) return info;
    if (!whole) {
      bytes = read_image_bytes(path, SIZE_MAX, &whole);
      data = reinterpret_cast<const uint8_t*>(bytes.data());
    }
    return probe_image(data, bytes.size());
  } catch (const DecodeError& e) {
    if (e.what() != e.reason()) throw;  // already names the path
    throw DecodeError::for_file(path, e.reason(), e.hint());
  }
}

Image decode_image(const uint8_t* data, size_t size, const DecodeOptions& options) {
  if (data == nullptr || size == 0) throw DecodeError("empty file");
  const ImageFormat format = sniff_format(data, size);
  try {
    switch (format) {
      case ImageFormat::Jpeg: return detail::decode_jpeg(data, size, options);
      case ImageFormat::Png: return detail::decode_png(data, size, options);
      case ImageFormat::Bmp: return detail::decode_bmp(data, size, options);
      case ImageFormat::Gif: return detail::decode_gif(data, size, options);
      case ImageFormat::Unknown: throw DecodeError("not an image (unrecognised content)");
      default: throw DecodeError(unsupported_reason(format), "convert it to JPEG or PNG");
    }
  } catch (const std::bad_alloc&) {
    throw DecodeError(std::string("not enough memory to decode this ") + format_name(format) + " image");
  }
}

Image decode_image_file(const std::filesystem::path& path, const DecodeOptions& options) {
  try {
    bool whole = false;
    const std::string bytes = read_image_bytes(path, SIZE_MAX, &whole, options.max_file_bytes);
    return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), options);
  } catch (const DecodeError& e) {
    if (e.what() != e.reason()) throw;  // already names the path
    throw DecodeError::for_file(path, e.reason(), e.hint());
  } catch (const std::bad_alloc&) {
    throw DecodeError::for_file(path, "not enough memory to read the file");
  }
}

}  // namespace tabby
