// Hostile input, corpus style: the broken, mislabelled, oversized and oddly
// placed files real photo collections hold, made by the test and fed to the
// decode API and to folder scanning. Every bad file must become one DecodeError
// (one line naming the file, a reason, a hint) and every scan must finish and
// count what it skipped: no crash, no hang, no other exception, and no
// truncated image silently decoded with padding.
//
// The regression cases at the end are inputs the fuzz targets (fuzz/) found.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <future>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "image_fixtures.h"
#include "support/test_support.h"
#include "tabby/config/model_spec.h"
#include "tabby/config/toml_json.h"
#include "tabby/dataset/folder.h"
#include "tabby/dataset/split_spec.h"
#include "tabby/image/decode.h"
#include "support/image_encode.h"

namespace tabby {
namespace {

using namespace fixtures;
using namespace std::string_literals;  // "...\0..."s keeps embedded zero bytes
namespace fs = std::filesystem;

// ---- the corpus ---------------------------------------------------------------

struct NamedFile {
  std::string name;
  std::string bytes;
};

// One small valid file of each decodable format (and the main variants).
std::vector<NamedFile> valid_files() {
  const Image image = pattern_image(24, 16, 5);
  std::vector<NamedFile> files = {
      {"tabby.png", encode_png(image)},
      {"tabby.jpg", encode_jpeg(image, 85)},
      {"baseline.jpg", jpeg_rgb(image, 80)},
      {"progressive.jpg", jpeg_rgb(image, 80, true)},
      {"rgb24.bmp", bmp_bytes(bmp_truecolor(image, 24))},
      {"rgb32-top-down.bmp", bmp_bytes(bmp_truecolor(image, 32, true))},
  };
  PngSpec interlaced;
  interlaced.width = image.width;
  interlaced.height = image.height;
  interlaced.interlaced = true;
  interlaced.rows = image.pixels;
  files.push_back({"interlaced.png", png_bytes(interlaced)});
#ifdef TABBY_HAVE_GIF
  GifFrame frame;
  frame.width = 24;
  frame.height = 16;
  frame.interlaced = true;
  for (int i = 0; i < 24 * 16; ++i) frame.indices.push_back(static_cast<uint8_t>(i % 7));
  files.push_back({"interlaced.gif", gif_bytes(24, 16, {{0, 0, 0}, {9, 9, 9}, {200, 10, 10}, {10, 200, 10},
                                                         {10, 10, 200}, {90, 90, 0}, {0, 90, 90}},
                                               {frame})});
#endif
  return files;
}

void put_be32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (24 - 8 * i)) & 0xFF);
}

// A PNG whose IHDR declares width x height; the CRC is fixed so that libpng
// reaches the size check instead of stopping at a bad checksum.
std::string png_declaring(uint32_t width, uint32_t height) {
  std::string png = encode_png(pattern_image(4, 4));
  put_be32(png, 16, width);
  put_be32(png, 20, height);
  const uint32_t crc = static_cast<uint32_t>(crc32(0, bytes_of(png) + 12, 17));  // "IHDR" + 13 data bytes
  put_be32(png, 29, crc);
  return png;
}

// A JPEG whose frame header (SOF0) declares width x height.
std::string jpeg_declaring(uint16_t width, uint16_t height) {
  std::string jpeg = jpeg_rgb(pattern_image(16, 16), 80);
  const size_t sof = find_marker(jpeg, 0xC0);
  EXPECT_NE(sof, std::string::npos);
  // FF C0, length (2), precision (1), height (2), width (2)
  jpeg[sof + 5] = static_cast<char>(height >> 8);
  jpeg[sof + 6] = static_cast<char>(height & 0xFF);
  jpeg[sof + 7] = static_cast<char>(width >> 8);
  jpeg[sof + 8] = static_cast<char>(width & 0xFF);
  return jpeg;
}

// A BMP header (BITMAPINFOHEADER, 24 bits) declaring width x height, with only
// `pixel_bytes` bytes of pixel data after it.
std::string bmp_declaring(int32_t width, int32_t height, size_t pixel_bytes = 0) {
  std::string s(54 + pixel_bytes, '\0');
  s[0] = 'B';
  s[1] = 'M';
  put_le32(s, 2, static_cast<uint32_t>(s.size()));
  put_le32(s, 10, 54);
  put_le32(s, 14, 40);
  put_le32(s, 18, static_cast<uint32_t>(width));
  put_le32(s, 22, static_cast<uint32_t>(height));
  put_le16(s, 26, 1);
  put_le16(s, 28, 24);
  return s;
}

// A hand-built GIF: logical screen width x height, a 2-colour global table,
// then one 1x1 frame (LZW minimum code size 2: clear, index 1, end).
std::string gif_declaring(uint16_t width, uint16_t height) {
  std::string s = "GIF89a";
  s += static_cast<char>(width & 0xFF);
  s += static_cast<char>(width >> 8);
  s += static_cast<char>(height & 0xFF);
  s += static_cast<char>(height >> 8);
  s += "\x80\x00\x00"s;                              // global table of 2 entries, background 0, aspect 0
  s += "\x00\x00\x00\xFF\xFF\xFF"s;                  // black, white
  s += "\x2C\x00\x00\x00\x00\x01\x00\x01\x00\x00"s;  // image descriptor: 1x1 at 0,0, no local table
  s += "\x02\x02\x4C\x01\x00"s;                      // LZW data: one sub-block, then the terminator
  s += "\x3B"s;
  return s;
}

// The DecodeError a file gives; fails the test when it decodes or throws
// anything else. Checks the message rules on the way.
DecodeError decode_file_error(const fs::path& path, const DecodeOptions& options = {}) {
  try {
    const Image image = decode_image_file(path, options);
    ADD_FAILURE() << path << " decoded (" << image.width << "x" << image.height << ") but should not";
  } catch (const DecodeError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path.string()), std::string::npos) << "the message does not name the file: " << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << "not one line: " << what;
    EXPECT_FALSE(e.reason().empty());
    EXPECT_FALSE(e.hint().empty()) << what;
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << path << ": not a DecodeError: " << e.what();
  }
  return DecodeError("(no error)");
}

std::string decode_file_reason(const fs::path& path, const DecodeOptions& options = {}) {
  return decode_file_error(path, options).reason();
}

bool same_pixels(const Image& a, const Image& b) {
  return a.width == b.width && a.height == b.height && a.pixels == b.pixels;
}

// ---- truncation -----------------------------------------------------------------

// Every prefix of every valid file is refused with a DecodeError, or decodes to
// exactly the full image: what a cut may remove without losing a pixel is the
// format's trailer (JPEG's end marker, PNG's IEND chunk, GIF's terminator
// blocks), never pixel data. libjpeg would pad a cut JPEG with grey and
// libpng stops at a short IDAT only by error, so this is the property that
// keeps half-downloaded photos out of training sets.
TEST(HostileTruncation, EveryPrefixIsRefusedOrDecodesWhole) {
  constexpr size_t kLongestTrailer = 12;  // PNG's IEND chunk
  for (const NamedFile& file : valid_files()) {
    SCOPED_TRACE(file.name);
    ASSERT_FALSE(file.bytes.empty());
    const Image whole = decode_bytes(file.bytes);
    size_t refused = 0, intact = 0;
    for (size_t keep = 0; keep < file.bytes.size(); ++keep) {
      const std::string prefix = file.bytes.substr(0, keep);
      try {
        const Image image = decode_bytes(prefix);
        EXPECT_TRUE(same_pixels(image, whole)) << "a prefix of " << keep << " bytes decoded to different pixels";
        EXPECT_GE(keep + kLongestTrailer, file.bytes.size())
            << "a prefix of " << keep << " of " << file.bytes.size() << " bytes decoded";
        ++intact;
      } catch (const DecodeError& e) {
        EXPECT_FALSE(e.reason().empty());
        EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
        ++refused;
      } catch (const std::exception& e) {
        ADD_FAILURE() << "prefix of " << keep << " bytes: not a DecodeError: " << e.what();
      }
    }
    EXPECT_GE(refused, file.bytes.size() - kLongestTrailer);
    EXPECT_LE(intact, kLongestTrailer);
  }
}

// Cut files on disk name the file and say "truncated" once the header is in.
TEST(HostileTruncation, TruncatedFilesSayTruncated) {
  const fs::path dir = testing::scratch_dir("hostile_truncated_files");
  for (const NamedFile& file : valid_files()) {
    SCOPED_TRACE(file.name);
    const fs::path path = dir / file.name;
    testing::write_bytes(path, file.bytes.substr(0, file.bytes.size() * 3 / 4));
    EXPECT_NE(decode_file_reason(path).find("truncated"), std::string::npos) << decode_file_reason(path);
  }
}

// ---- wrong content for the name ------------------------------------------------

TEST(HostileContent, ZeroByteFileIsEmpty) {
  const fs::path dir = testing::scratch_dir("hostile_zero_byte");
  testing::write_bytes(dir / "zero.jpg", "");
  EXPECT_EQ(decode_file_reason(dir / "zero.jpg"), "empty file");
  EXPECT_THROW(probe_image_file(dir / "zero.jpg"), DecodeError);
  EXPECT_THROW(decode_image(nullptr, 0), DecodeError);
}

TEST(HostileContent, ContentDecidesNotTheName) {
  const fs::path dir = testing::scratch_dir("hostile_mislabelled");
  const Image image = pattern_image(6, 5, 2);
  // A PNG named .jpg (and a JPEG named .png) are common and decode as what they are.
  testing::write_bytes(dir / "png.jpg", encode_png(image));
  testing::write_bytes(dir / "jpeg.png", encode_jpeg(image));
  EXPECT_TRUE(same_pixels(decode_image_file(dir / "png.jpg"), image));
  EXPECT_EQ(probe_image_file(dir / "png.jpg").format, ImageFormat::Png);
  EXPECT_EQ(decode_image_file(dir / "jpeg.png").width, 6);

  // Formats tabby recognises but cannot decode are named.
  const std::vector<std::pair<std::string, std::string>> unsupported = {
      {"webp.jpg", "RIFF\x24\0\0\0WEBPVP8 \x18\0\0\0"s},
      {"tiff.png", "II*\0\x08\0\0\0\0\0"s},
      {"heic.jpg", "\0\0\0\x18" "ftypheic\0\0\0\0mif1heic"s},
      {"avif.jpeg", "\0\0\0\x1C" "ftypavif\0\0\0\0avifmif1miaf"s},
      {"jxl.jpg", "\xFF\x0A\xFA\x7F\x01\x90"s},
  };
  for (const auto& [name, bytes] : unsupported) {
    testing::write_bytes(dir / name, bytes);
    const DecodeError e = decode_file_error(dir / name);
    EXPECT_NE(e.reason().find("not supported"), std::string::npos) << name << ": " << e.reason();
    EXPECT_NE(std::string(e.hint()).find("convert"), std::string::npos) << name << ": " << e.hint();
  }

  // Wrong magic: a valid file with its first byte changed, text, HTML, a zip.
  const std::vector<std::pair<std::string, std::string>> not_images = {
      {"png-first-byte.png", "\x88" + encode_png(image).substr(1)},
      {"jpeg-first-byte.jpg", "\xFE" + encode_jpeg(image).substr(1)},
      {"gif-version.gif", "GIF90a" + std::string(20, '\0')},
      {"bm-text.bmp", "BM is not enough to be a bitmap\n"},
      {"error-page.jpg", "<html><body>403 Forbidden</body></html>\n"},
      {"archive.png", "PK\x03\x04\x14\0\0\0\0\0"s},
      {"one-byte.jpg", "\xFF"},
  };
  for (const auto& [name, bytes] : not_images) {
    testing::write_bytes(dir / name, bytes);
    EXPECT_EQ(decode_file_reason(dir / name), "not an image (unrecognised content)") << name;
  }
}

// ---- huge images -----------------------------------------------------------------

// Headers that declare billions of pixels are refused by the default pixel
// limit, from the header alone: nothing near that size is allocated (the
// files are a few hundred bytes, and the sanitizer builds would abort on a
// failed multi-gigabyte allocation).
TEST(HostileHuge, DeclaredSizesPastThePixelLimitAreRefused) {
  const fs::path dir = testing::scratch_dir("hostile_huge");
  std::vector<NamedFile> files = {
      {"huge.png", png_declaring(100000, 100000)},
      {"wide.png", png_declaring(1000000, 200)},  // libpng's own limit is 1000000 per side
      {"huge.jpg", jpeg_declaring(65000, 65000)},
      {"huge.bmp", bmp_declaring(60000, 60000)},
      {"huge-top-down.bmp", bmp_declaring(60000, -60000)},
      {"huge.gif", gif_declaring(65535, 65535)},
  };
  for (const NamedFile& file : files) {
    SCOPED_TRACE(file.name);
    testing::write_bytes(dir / file.name, file.bytes);
    const DecodeError e = decode_file_error(dir / file.name);
    EXPECT_NE(e.reason().find("too large"), std::string::npos) << e.reason();
    EXPECT_NE(e.reason().find("the limit is 178956970"), std::string::npos) << e.reason();
    // The header is still readable: tools can report the size without decoding.
    const ImageInfo info = probe_image_file(dir / file.name);
    EXPECT_GT(static_cast<uint64_t>(info.width) * static_cast<uint64_t>(info.height), DecodeOptions{}.max_pixels);
  }
}

// The limit is a setting: a caller may lower it (a server taking uploads) or
// raise it (a genuine gigapixel scan).
TEST(HostileHuge, PixelLimitIsSettable) {
  const Image image = pattern_image(30, 20, 1);
  for (const std::string& file : {encode_png(image), encode_jpeg(image), bmp_bytes(bmp_truecolor(image, 24)),
                                  gif_declaring(30, 20)}) {
    SCOPED_TRACE(format_name(sniff_format(bytes_of(file), file.size())));
    DecodeOptions options;
    options.max_pixels = 599;
    EXPECT_NE(decode_failure(file, options).find("too large"), std::string::npos);
    options.max_pixels = 600;
    EXPECT_NO_THROW(decode_bytes(file, options));
  }
  // A huge declared size within a raised limit still fails cleanly (the data
  // is missing), before allocating: BMP checks the data length first.
  DecodeOptions generous;
  generous.max_pixels = uint64_t{1} << 40;
  EXPECT_NE(decode_failure(bmp_declaring(60000, 60000, 100), generous).find("truncated"), std::string::npos);
}

// A file far larger than any photo is refused from its size, unread: a
// sparse multi-gigabyte file named .jpg must not be pulled into memory.
TEST(HostileHuge, FilesPastTheSizeLimitAreRefusedUnread) {
  const fs::path dir = testing::scratch_dir("hostile_huge_files");
  const fs::path big = dir / "sparse.jpg";
  testing::write_bytes(big, "\xFF\xD8\xFF\xE0"s);
  ASSERT_EQ(::truncate(big.c_str(), static_cast<off_t>(DecodeOptions{}.max_file_bytes) + 1), 0);
  EXPECT_NE(decode_file_reason(big).find("file too large"), std::string::npos) << decode_file_reason(big);

  const std::string png = encode_png(pattern_image(8, 8));
  testing::write_bytes(dir / "small.png", png);
  DecodeOptions options;
  options.max_file_bytes = png.size() - 1;
  EXPECT_NE(decode_file_reason(dir / "small.png", options).find("file too large"), std::string::npos);
  options.max_file_bytes = png.size();
  EXPECT_EQ(decode_image_file(dir / "small.png", options).width, 8);
}

// ---- things that are not regular files ---------------------------------------------

TEST(HostileFileSystem, DirectoriesAndDevicesNamedLikeImages) {
  const fs::path dir = testing::scratch_dir("hostile_not_files");
  fs::create_directories(dir / "folder.jpg");
  EXPECT_NE(decode_file_reason(dir / "folder.jpg").find("directory"), std::string::npos);
  EXPECT_THROW(probe_image_file(dir / "folder.jpg"), DecodeError);
  EXPECT_NE(decode_file_reason(dir / "missing.jpg").find("not found"), std::string::npos);
  EXPECT_NE(decode_file_reason("/dev/null").find("not a regular file"), std::string::npos);
  EXPECT_NE(decode_file_reason("/dev/zero").find("not a regular file"), std::string::npos);
}

// Opening a FIFO for reading waits for a writer; the decoder must refuse it
// instead of hanging. If it blocks, the test opens the writing end itself to
// free the thread, then fails.
TEST(HostileFileSystem, FifoNamedLikeAnImageIsRefusedWithoutBlocking) {
  const fs::path dir = testing::scratch_dir("hostile_fifo");
  const fs::path fifo = dir / "pipe.jpg";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  std::promise<std::string> reason;
  std::future<std::string> done = reason.get_future();
  std::thread reader([&] {
    try {
      decode_image_file(fifo);
      reason.set_value("decoded");
    } catch (const DecodeError& e) {
      reason.set_value(e.reason());
    } catch (...) {
      reason.set_value("not a DecodeError");
    }
  });
  if (done.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    ADD_FAILURE() << "decode_image_file blocked on a FIFO";
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
  }
  reader.join();
  EXPECT_EQ(done.get(), "not a regular file");
}

TEST(HostileFileSystem, SymlinkLoopsEndWithAClearError) {
  const fs::path dir = testing::scratch_dir("hostile_symlink_files");
  fs::create_symlink("self.jpg", dir / "self.jpg");
  fs::create_symlink("b.png", dir / "a.png");
  fs::create_symlink("a.png", dir / "b.png");
  for (const char* name : {"self.jpg", "a.png"}) {
    const std::string reason = decode_file_reason(dir / name);
    EXPECT_NE(reason.find("symbolic links"), std::string::npos) << reason;  // strerror(ELOOP)
  }
  // A dataset folder that is itself a loop names the problem, not "missing".
  fs::create_symlink("loop", dir / "loop");
  try {
    scan_folder(dir / "loop");
    ADD_FAILURE() << "scanned a symlink loop";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "loop").string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("symbolic links"), std::string::npos) << e.what();
  }
}

// Permission bits mean nothing to root (and to CAP_DAC_OVERRIDE): there the
// files stay readable and this test has nothing to check.
TEST(HostileFileSystem, UnreadableFilesAndFolders) {
  const fs::path dir = testing::scratch_dir("hostile_permissions");
  testing::write_bytes(dir / "data" / "cats" / "locked.png", encode_png(pattern_image(3, 3)));
  testing::write_bytes(dir / "data" / "dogs" / "private" / "x.png", encode_png(pattern_image(3, 3)));
  testing::write_bytes(dir / "data" / "dogs" / "ok.png", encode_png(pattern_image(3, 3)));
  const fs::path locked = dir / "data" / "cats" / "locked.png";
  const fs::path private_dir = dir / "data" / "dogs" / "private";
  ASSERT_EQ(::chmod(locked.c_str(), 0), 0);
  ASSERT_EQ(::chmod(private_dir.c_str(), 0), 0);
  struct Restore {
    fs::path a, b;
    ~Restore() {
      ::chmod(a.c_str(), 0644);
      ::chmod(b.c_str(), 0755);
    }
  } restore{locked, private_dir};
  if (::access(locked.c_str(), R_OK) == 0) {
    GTEST_SKIP() << "permission bits are not enforced for this user (uid " << ::geteuid()
                 << ", root or CAP_DAC_OVERRIDE): unreadable files cannot be made";
  }
  EXPECT_NE(decode_file_reason(locked).find("cannot open file"), std::string::npos) << decode_file_reason(locked);
  EXPECT_THROW(probe_image_file(locked), DecodeError);
  // An unreadable folder inside a class is an error naming it (a silently
  // smaller dataset would be worse).
  try {
    scan_folder(dir / "data");
    ADD_FAILURE() << "scanned a dataset with an unreadable folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(private_dir.string()), std::string::npos) << e.what();
  }
}

TEST(HostileFileSystem, NonUtf8NamesAreFilesLikeAnyOther) {
  const fs::path dir = testing::scratch_dir("hostile_non_utf8");
  const std::string latin1_class = "caf\xE9";         // "café" in Latin-1: invalid UTF-8
  const std::string bad_name = "\xFF\xFE photo.JPG";  // not UTF-8 in any reading
  const Image image = pattern_image(5, 4, 3);
  testing::write_bytes(dir / latin1_class / bad_name, encode_jpeg(image));
  testing::write_bytes(dir / latin1_class / "cut \x80.png", encode_png(image).substr(0, 40));
  testing::write_bytes(dir / "plain" / "ok.png", encode_png(image));

  const Dataset dataset = scan_folder(dir);
  ASSERT_EQ(dataset.class_names, (std::vector<std::string>{latin1_class, "plain"}));
  ASSERT_EQ(dataset.size(), 3u);
  EXPECT_EQ(decode_image_file(dir / latin1_class / bad_name).width, 5);
  const std::string reason = decode_file_reason(dir / latin1_class / "cut \x80.png");
  EXPECT_NE(reason.find("truncated"), std::string::npos) << reason;
}

// ---- a whole dataset of them -------------------------------------------------------------

// A class folder of every kind of bad file next to one of good files (some in
// odd places), scanned and decoded as the input pipeline does: the scan lists
// files by extension and counts what it skips; every listed bad file is a
// DecodeError naming it, with the reason expected for its kind.
TEST(HostileCorpus, ScanThenDecodeSkipsAndNamesEveryBadFile) {
  const fs::path root = testing::scratch_dir("hostile_corpus") / "data";
  const fs::path good = root / "good";
  const fs::path bad = root / "bad";
  const Image image = pattern_image(12, 10, 4);

  for (const NamedFile& file : valid_files()) testing::write_bytes(good / file.name, file.bytes);
  testing::write_bytes(good / "png-named.jpg", encode_png(image));
  testing::write_bytes(good / "SHOUTING.JPEG", encode_jpeg(image));
  testing::write_bytes(good / "nested" / "deeper" / "deep.bmp", bmp_bytes(bmp_truecolor(image, 24)));
  testing::write_bytes(good / "album.jpg" / "inside.png", encode_png(image));  // a folder named like an image
  testing::write_bytes(good / "\xFF\xFE.jpg", encode_jpeg(image));
  testing::write_bytes(good / ".hidden.jpg", "skipped: hidden");
  testing::write_bytes(good / "notes.txt", "not an image extension");
  fs::create_directories(good / "empty.png");
  fs::create_directory_symlink(".", good / "loop");  // walks back into itself
  fs::create_symlink("self.jpg", good / "self.jpg");  // ELOOP
  fs::create_symlink("missing.png", good / "gone.png");
  ASSERT_EQ(::mkfifo((good / "pipe.jpg").c_str(), 0644), 0);

  // name -> the reason (a part of it) each bad file must give
  std::map<std::string, std::string> expected;
  auto add_bad = [&](const std::string& name, const std::string& bytes, const std::string& reason) {
    testing::write_bytes(bad / name, bytes);
    expected[name] = reason;
  };
  for (const NamedFile& file : valid_files()) {
    add_bad("cut-" + file.name, file.bytes.substr(0, file.bytes.size() / 2), "truncated");
  }
  add_bad("zero.jpg", "", "empty file");
  add_bad("text.jpg", "hello\n", "not an image");
  add_bad("magic.png", "\x88" + encode_png(image).substr(1), "not an image");
  add_bad("webp.jpg", "RIFF\x24\0\0\0WEBPVP8 \x18\0\0\0"s, "WebP images are not supported");
  add_bad("tiff.png", "II*\0\x08\0\0\0\0\0"s, "TIFF images are not supported");
  add_bad("huge.png", png_declaring(200000, 200000), "too large");
  add_bad("huge.gif", gif_declaring(65535, 65535), "too large");
  add_bad("huge.bmp", bmp_declaring(50000, 50000), "too large");
  add_bad("zero-size.bmp", bmp_declaring(0, 10), "invalid BMP image size");
  add_bad("zero-size.gif", "GIF89a\0\0\0\0\0\0\0\x3B"s, "GIF");
  std::string flipped = encode_png(image);
  flipped[flipped.size() / 2] ^= 0x55;  // inside IDAT: the CRC no longer matches
  add_bad("flipped.png", flipped, "PNG data (libpng: IDAT");  // zlib or the CRC, whichever notices first

  ::testing::internal::CaptureStderr();
  const Dataset dataset = scan_folder(root);
  const std::string log = ::testing::internal::GetCapturedStderr();

  ASSERT_EQ(dataset.class_names, (std::vector<std::string>{"bad", "good"}));
  std::set<std::string> listed_good;
  size_t decoded = 0;
  std::map<std::string, std::string> reasons;
  for (const Sample& sample : dataset.samples) {
    const std::string name = sample.path.filename().string();
    if (sample.label == 1) {
      listed_good.insert(fs::relative(sample.path, good).string());
      EXPECT_NO_THROW(decode_image_file(sample.path)) << sample.path;
      ++decoded;
      continue;
    }
    reasons[name] = decode_file_reason(sample.path);
  }
  std::set<std::string> expected_good = {"png-named.jpg", "SHOUTING.JPEG", "nested/deeper/deep.bmp",
                                         "album.jpg/inside.png", "\xFF\xFE.jpg"};
  for (const NamedFile& file : valid_files()) expected_good.insert(file.name);
  EXPECT_EQ(listed_good, expected_good);
  EXPECT_EQ(decoded, expected_good.size());
  ASSERT_EQ(reasons.size(), expected.size());
  for (const auto& [name, part] : expected) {
    EXPECT_NE(reasons[name].find(part), std::string::npos) << name << ": " << reasons[name];
  }
  // What the scan skipped, it says.
  EXPECT_NE(log.find("skipped 2 broken symlink(s)"), std::string::npos) << log;
  EXPECT_NE(log.find("symlinked folder(s)"), std::string::npos) << log;
  EXPECT_NE(log.find("ignored 1 file(s)"), std::string::npos) << log;
}

// A class folder whose only files are broken still scans (names are all the
// scan reads); a class folder with no image files at all is an error naming it.
TEST(HostileCorpus, EmptyClassFolderIsAnErrorNamingIt) {
  const fs::path root = testing::scratch_dir("hostile_empty_class") / "data";
  testing::write_bytes(root / "cats" / "a.png", encode_png(pattern_image(3, 3)));
  testing::write_bytes(root / "dogs" / "readme.txt", "no images here");
  fs::create_directories(root / "dogs" / "sub.jpg");
  try {
    scan_folder(root);
    ADD_FAILURE() << "scanned a class without images";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'dogs' has no images"), std::string::npos) << e.what();
    EXPECT_FALSE(e.hint().empty());
  }
  EXPECT_THROW(scan_folder(root / "nowhere"), Error);
  EXPECT_THROW(scan_folder(root / "cats" / "a.png"), Error);
}

// ---- regressions from fuzzing ----------------------------------------------------------

// fuzz_model_config: a table header whose key starts with a character no key
// may start with ("[[\x04", found by the fuzzer; "[&", "[[[1]]]" are the
// upstream reports) breaks a precondition inside toml++ 3.3, which aborts
// where its assertions are compiled in. As tabby is built, each must be one
// tabby::Error naming the file.
TEST(HostileRegressions, MalformedTableHeadersAreParseErrors) {
  const std::vector<std::string> texts = {
      "name = \"vgg16\"\n[[layers]]\ntype = \"Dropout\"\n[[\x04\0\0\0\x01\0\0\0\ntype = \"Dense\"\n"s,
      "[&", "[[[1]]]", "[[=", "[ ]", "[[\t\x7F]]", "[.a]"};
  for (const std::string& text : texts) {
    SCOPED_TRACE(text);
    try {
      parse_model_toml(text, "fuzzed.toml");
      ADD_FAILURE() << "parsed";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("fuzzed.toml"), std::string::npos) << e.what();
    }
    EXPECT_THROW(parse_toml_to_json(text, "fuzzed.toml"), Error);
  }
}

// fuzz_csv_and_splits: a count beyond the range of long long was converted
// to it (undefined behaviour). Counts past either end mean that end, as in
// Python slicing.
TEST(HostileRegressions, HugeSplitCountsMeanTheEnd) {
  const std::vector<SplitSpec> found = parse_split_union("testl[-0_01111111111111111111111111111102:0000]+all[-1:]");
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(slice_range(found[0], 100).begin, 0u);
  EXPECT_EQ(slice_range(found[0], 100).end, 0u);
  EXPECT_EQ(slice_range(found[1], 100).begin, 99u);
  const SplitSpec huge = parse_split_spec("train[:100_000_000_000_000_000_000_000]");
  EXPECT_EQ(slice_range(huge, 7).begin, 0u);
  EXPECT_EQ(slice_range(huge, 7).end, 7u);
  const SplitSpec from_end = parse_split_spec("train[-1000000000000000000000000000000:]");
  EXPECT_EQ(slice_range(from_end, 7).begin, 0u);
  EXPECT_EQ(slice_range(from_end, 7).end, 7u);
}

// fuzz_model_config: toml++ 3.3 asks whether a non-ASCII character outside a
// string is Unicode whitespace, and for many code points that check is
// undefined behaviour (U+FEFE here; "¡" too). tabby refuses such characters
// first, with the line and column; non-ASCII text in strings, quoted keys
// and comments stays valid.
TEST(HostileRegressions, NonAsciiOutsideStringsIsRefusedWithItsPosition) {
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"\xEF\xBB\xBEme = \"animals-cnn\"\n", ":1:1:"},  // U+FEFE, found by the fuzzer
      {"a = 1 \xC2\xA1\n", ":1:7:"},                     // U+00A1
      {"a = 1\n\xE3\x80\x80" "b = 2\n", ":2:1:"},        // U+3000 (ideographic space)
      {"a = [1,\n  2 \xEF\xAC\xA6]\n", ":2:5:"},          // U+FB26
      {"s = \"\"\"x \\\n   \xC2\xA1\"\"\"\n", ":2:4:"},    // right after a line-ending backslash
      {"s = \"\"\"a\\\xEF\xBB\xBD\"\"\"\n", ":1:10:"},        // U+FEFD escaped, found by the fuzzer
      {"s = \"x\\ \xC2\xA1\"\n", ":1:9:"},                   // the same in a one-line string
  };
  for (const auto& [text, where] : refused) {
    SCOPED_TRACE(text);
    try {
      parse_toml_to_json(text, "fuzzed.toml");
      ADD_FAILURE() << "parsed";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("fuzzed.toml" + where), std::string::npos) << e.what();
    }
  }
  const std::string valid = R"(# café ¡ comment
name = "café ﻾"
"clé" = 'littéral \ "'
multi = """
¡one \" \
  two¡""""
raw = '''
¡ ''' # after¡
list = ["¡", '¡'] # ¡
)";
  nlohmann::json parsed;
  ASSERT_NO_THROW(parsed = parse_toml_to_json("\xEF\xBB\xBF" + valid, "valid.toml"));
  EXPECT_EQ(parsed["name"], "café ﻾");
  EXPECT_EQ(parsed["clé"], "littéral \\ \"");
  EXPECT_EQ(parsed["multi"], "¡one \" two¡\"");
  EXPECT_EQ(parsed["raw"], "¡ ");
  EXPECT_EQ(parsed["list"][1], "¡");
}

// Every code point of the Basic Multilingual Plane where toml++'s whitespace
// check may meet it: outside strings (refused first by tabby), and where a
// malformed value's lookahead runs into it (fuzz_model_config's third
// finding; left to the library tabby links, which must give a parse error).
TEST(HostileRegressions, EveryNonAsciiCodePointIsAParseErrorInStructure) {
  auto utf8 = [](uint32_t cp) {
    std::string s;
    if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
    } else {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    }
    s += static_cast<char>(0x80 | (cp & 0x3F));
    return s;
  };
  size_t failures = 0;
  for (uint32_t cp = 0x80; cp <= 0xFFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;  // surrogates are not characters
    const std::string c = utf8(cp);
    for (const std::string& text : {"k" + c + " = 1\n", "a = 1 " + c + "\n", "a = 5\"x" + c + "\"\n",
                                    "a = 5\"\"\"" + c + "\"\"\"\n"}) {
      try {
        parse_toml_to_json(text, "cp.toml");
        if (++failures < 5) ADD_FAILURE() << "U+" << std::hex << cp << " parsed in: " << text;
      } catch (const Error&) {
      }
    }
  }
  EXPECT_EQ(failures, 0u);
}

}  // namespace
}  // namespace tabby
