// Writes the seed corpora of the fuzz targets: small valid files of every
// kind each parser reads (so mutations start from deep inside the formats),
// made here rather than committed as binaries.
//
//   make_seeds OUTDIR [FILE.pth ...]
// creates OUTDIR/<target>/seed-* for decode_image, safetensors, pth,
// model_config and csv_and_splits. Extra .pth files (e.g. from
// tests/python/make_pth_fixtures.py) become pth seeds too; the pickle of a
// zip-format one also becomes a pickle-mode seed.
// jpeglib.h needs size_t and FILE declared first.
#include <cstdio>
#include <cstdlib>
#include <jpeglib.h>
#include <png.h>
#ifdef TABBY_HAVE_GIF
#include <gif_lib.h>
#endif

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "tabby/config/presets.h"
#include "support/image_encode.h"
#include "tabby/image/image.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "support/pth_writer.h"
#include "tabby/weights/pth.h"
#include "tabby/weights/safetensors.h"
#include "tabby/weights/zip_archive.h"

namespace {

namespace fs = std::filesystem;

class SeedWriter {
 public:
  SeedWriter(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }
  // Each seed is written with the given leading mode byte(s) (may be empty).
  void add(const std::string& name, const std::string& prefix, const std::string& bytes) {
    std::ofstream out(dir_ / ("seed-" + name), std::ios::binary);
    out << prefix << bytes;
    ++count_;
  }
  int count() const { return count_; }

 private:
  fs::path dir_;
  int count_ = 0;
};

std::string mode(uint8_t m) { return std::string(1, static_cast<char>(m)); }

tabby::Image pattern(int w, int h) {
  tabby::Image img(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.row(y) + x * 3;
      p[0] = static_cast<uint8_t>(x * 255 / w);
      p[1] = static_cast<uint8_t>(y * 255 / h);
      p[2] = static_cast<uint8_t>((x ^ y) * 16);
    }
  }
  return img;
}

// ---- PNG of other colour types (tabby's encoder writes RGB only) -------------

void png_append(png_structp png, png_bytep data, png_size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), n);
}

std::string png_of(int w, int h, int color_type, int depth, bool interlaced) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return {};
  }
  png_set_write_fn(png, &out, png_append, nullptr);
  png_set_IHDR(png, info, w, h, depth, color_type, interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  std::vector<png_color> palette;
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    for (int i = 0; i < (1 << depth); ++i) {
      palette.push_back({static_cast<png_byte>(i * 40), static_cast<png_byte>(255 - i * 20), static_cast<png_byte>(i)});
    }
    png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
    png_byte alpha[2] = {0, 128};
    png_set_tRNS(png, info, alpha, 2, nullptr);
  }
  png_write_info(png, info);
  const int channels = color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_PALETTE ? 1
                       : color_type == PNG_COLOR_TYPE_GRAY_ALPHA                                 ? 2
                       : color_type == PNG_COLOR_TYPE_RGB                                        ? 3
                                                                                                 : 4;
  const size_t row_bytes = (static_cast<size_t>(w) * channels * depth + 7) / 8;
  std::vector<png_byte> row(row_bytes);
  const int passes = interlaced ? png_set_interlace_handling(png) : 1;
  for (int pass = 0; pass < passes; ++pass) {
    for (int y = 0; y < h; ++y) {
      for (size_t i = 0; i < row_bytes; ++i) row[i] = static_cast<png_byte>(i * 7 + y * 13);
      png_write_row(png, row.data());
    }
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

// ---- JPEG of other kinds (grey, progressive, CMYK) ----------------------------

std::string jpeg_of(int w, int h, J_COLOR_SPACE space, int components, bool progressive) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buffer, &size);
  c.image_width = static_cast<JDIMENSION>(w);
  c.image_height = static_cast<JDIMENSION>(h);
  c.input_components = components;
  c.in_color_space = space;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 80, TRUE);
  if (progressive) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  std::vector<JSAMPLE> row(static_cast<size_t>(w) * components);
  while (c.next_scanline < c.image_height) {
    for (size_t i = 0; i < row.size(); ++i) row[i] = static_cast<JSAMPLE>(i * 5 + c.next_scanline * 9);
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&c, rows, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::string out(reinterpret_cast<char*>(buffer), size);
  std::free(buffer);
  return out;
}

// ---- BMP, built by hand ---------------------------------------------------------

void put16(std::string& s, uint32_t v) {
  s += static_cast<char>(v & 0xFF);
  s += static_cast<char>((v >> 8) & 0xFF);
}
void put32(std::string& s, uint32_t v) {
  put16(s, v & 0xFFFF);
  put16(s, v >> 16);
}

// BITMAPINFOHEADER (or BITMAPCOREHEADER when core) + palette/masks + pixel bytes.
std::string bmp_of(int w, int h, int bits, uint32_t compression, bool core, const std::string& pixels,
                   int palette_entries = 0, const std::vector<uint32_t>& masks = {}) {
  std::string dib;
  if (core) {
    put32(dib, 12);
    put16(dib, static_cast<uint32_t>(w));
    put16(dib, static_cast<uint32_t>(h));
    put16(dib, 1);
    put16(dib, static_cast<uint32_t>(bits));
  } else {
    put32(dib, 40);
    put32(dib, static_cast<uint32_t>(w));
    put32(dib, static_cast<uint32_t>(h));
    put16(dib, 1);
    put16(dib, static_cast<uint32_t>(bits));
    put32(dib, compression);
    put32(dib, static_cast<uint32_t>(pixels.size()));
    put32(dib, 2835);
    put32(dib, 2835);
    put32(dib, static_cast<uint32_t>(palette_entries));
    put32(dib, 0);
  }
  for (uint32_t m : masks) put32(dib, m);
  for (int i = 0; i < palette_entries; ++i) {
    dib += static_cast<char>(i * 50);
    dib += static_cast<char>(255 - i * 30);
    dib += static_cast<char>(i * 9);
    if (!core) dib += '\0';
  }
  std::string file = "BM";
  put32(file, static_cast<uint32_t>(14 + dib.size() + pixels.size()));
  put32(file, 0);
  put32(file, static_cast<uint32_t>(14 + dib.size()));
  return file + dib + pixels;
}

std::string rows_of(int w, int h, int bits) {
  const size_t stride = ((static_cast<size_t>(w) * bits + 31) / 32) * 4;
  std::string out(stride * h, '\0');
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(i * 11);
  return out;
}

// ---- GIF through giflib ------------------------------------------------------------

#ifdef TABBY_HAVE_GIF
int gif_append(GifFileType* gif, const GifByteType* data, int n) {
  static_cast<std::string*>(gif->UserData)->append(reinterpret_cast<const char*>(data), n);
  return n;
}

std::string gif_of(int w, int h, bool interlaced, bool transparent, bool offset_frame) {
  std::string out;
  int error = 0;
  GifFileType* gif = EGifOpen(&out, gif_append, &error);
  if (gif == nullptr) return {};
  EGifSetGifVersion(gif, true);
  GifColorType colors[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
  ColorMapObject* map = GifMakeMapObject(4, colors);
  EGifPutScreenDesc(gif, w, h, 8, 0, map);
  if (transparent) {
    const GifByteType gce[4] = {1, 0, 0, 2};
    EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, 4, gce);
  }
  const int fw = offset_frame ? w / 2 : w, fh = offset_frame ? h / 2 : h;
  EGifPutImageDesc(gif, offset_frame ? 1 : 0, offset_frame ? 1 : 0, fw, fh, interlaced, nullptr);
  std::vector<GifPixelType> line(static_cast<size_t>(fw));
  for (int y = 0; y < fh; ++y) {
    for (int x = 0; x < fw; ++x) line[static_cast<size_t>(x)] = static_cast<GifPixelType>((x + y) % 4);
    EGifPutLine(gif, line.data(), fw);
  }
  EGifCloseFile(gif, &error);
  GifFreeMapObject(map);
  return out;
}
#endif

void write_image_seeds(const fs::path& dir) {
  SeedWriter seeds(dir);
  std::vector<std::pair<std::string, std::string>> files;
  files.emplace_back("rgb.png", tabby::encode_png(pattern(12, 9)));
  files.emplace_back("baseline.jpg", tabby::encode_jpeg(pattern(40, 24), 75));
  files.emplace_back("gray.png", png_of(9, 7, PNG_COLOR_TYPE_GRAY, 8, false));
  files.emplace_back("gray1.png", png_of(13, 5, PNG_COLOR_TYPE_GRAY, 1, false));
  files.emplace_back("gray-alpha.png", png_of(6, 6, PNG_COLOR_TYPE_GRAY_ALPHA, 8, false));
  files.emplace_back("palette4.png", png_of(10, 6, PNG_COLOR_TYPE_PALETTE, 4, false));
  files.emplace_back("rgba16.png", png_of(5, 4, PNG_COLOR_TYPE_RGB_ALPHA, 16, false));
  files.emplace_back("interlaced.png", png_of(11, 10, PNG_COLOR_TYPE_RGB, 8, true));
  files.emplace_back("gray.jpg", jpeg_of(17, 9, JCS_GRAYSCALE, 1, false));
  files.emplace_back("progressive.jpg", jpeg_of(33, 20, JCS_RGB, 3, true));
  files.emplace_back("cmyk.jpg", jpeg_of(16, 8, JCS_CMYK, 4, false));
  files.emplace_back("rgb24.bmp", bmp_of(5, 3, 24, 0, false, rows_of(5, 3, 24)));
  files.emplace_back("rgb32.bmp", bmp_of(4, 2, 32, 0, false, rows_of(4, 2, 32)));
  files.emplace_back("pal8.bmp", bmp_of(6, 3, 8, 0, false, rows_of(6, 3, 8), 5));
  files.emplace_back("pal4.bmp", bmp_of(7, 2, 4, 0, false, rows_of(7, 2, 4), 4));
  files.emplace_back("pal1.bmp", bmp_of(9, 2, 1, 0, false, rows_of(9, 2, 1), 2));
  files.emplace_back("core24.bmp", bmp_of(3, 2, 24, 0, true, rows_of(3, 2, 24)));
  files.emplace_back("bitfields16.bmp",
                     bmp_of(4, 2, 16, 3, false, rows_of(4, 2, 16), 0, {0xF800, 0x07E0, 0x001F}));
  // RLE8: a run, an absolute run, end of line, a delta, end of bitmap.
  files.emplace_back("rle8.bmp", bmp_of(8, 3, 8, 1, false,
                                        std::string("\x03\x01\x00\x03\x02\x03\x04\x00\x00\x00\x00\x02\x01\x01\x00\x01", 16), 5));
  files.emplace_back("rle4.bmp", bmp_of(8, 2, 4, 2, false, std::string("\x04\x12\x00\x00\x00\x04\x21\x43\x00\x01", 10), 4));
#ifdef TABBY_HAVE_GIF
  files.emplace_back("plain.gif", gif_of(8, 6, false, false, false));
  files.emplace_back("interlaced.gif", gif_of(9, 10, true, true, false));
  files.emplace_back("offset.gif", gif_of(8, 8, false, true, true));
#endif
  for (const auto& [name, bytes] : files) {
    if (bytes.empty()) continue;
    seeds.add("full-" + name, mode(0), bytes);
    seeds.add("scaled-" + name, mode(1), bytes);
    seeds.add("crop-" + name, mode(6), bytes);
    if (name.find(".png") != std::string::npos) seeds.add("crcfix-" + name, mode(8), bytes);
  }
  std::cout << dir.filename().string() << ": " << seeds.count() << " seeds\n";
}

// ---- weights -------------------------------------------------------------------------

tabby::RawTensor tensor(tabby::DType dtype, std::vector<int64_t> shape) {
  tabby::RawTensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data.resize(t.expected_bytes());
  for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = static_cast<char>(i * 3 + 1);
  return t;
}

std::vector<tabby::RawTensorMap> sample_state_dicts() {
  using tabby::DType;
  std::vector<tabby::RawTensorMap> dicts;
  dicts.push_back({});
  dicts.push_back({{"dense.weight", tensor(DType::F32, {2, 3})}, {"dense.bias", tensor(DType::F32, {2})}});
  dicts.push_back({{"a", tensor(DType::F16, {3})},
                   {"b", tensor(DType::BF16, {1, 2})},
                   {"c", tensor(DType::F64, {})},
                   {"d", tensor(DType::I64, {2})},
                   {"e", tensor(DType::I32, {0, 4})},
                   {"f", tensor(DType::I16, {2})},
                   {"g", tensor(DType::I8, {3})},
                   {"h", tensor(DType::U8, {2, 2})},
                   {"i", tensor(DType::Bool, {2})}});
  dicts.push_back({{"bn.running_mean", tensor(DType::F32, {4})},
                   {"bn.num_batches_tracked", tensor(DType::I64, {})},
                   {"conv.weight", tensor(DType::F32, {2, 1, 3, 3})}});
  return dicts;
}

void write_safetensors_seeds(const fs::path& dir) {
  SeedWriter seeds(dir);
  int i = 0;
  for (const auto& dict : sample_state_dicts()) {
    seeds.add("dict" + std::to_string(i), "", tabby::serialize_safetensors(dict));
    seeds.add("dict-meta" + std::to_string(i), "",
              tabby::serialize_safetensors(dict, {{"format", "pt"}, {"tabby", "0.1"}}));
    ++i;
  }
  std::cout << dir.filename().string() << ": " << seeds.count() << " seeds\n";
}

void add_pth_seed(SeedWriter& seeds, const std::string& name, const std::string& bytes) {
  seeds.add(name, mode(0), bytes);
  if (!tabby::zip::looks_like_zip(bytes)) return;
  try {
    tabby::zip::Reader archive(bytes, name);
    for (const auto& entry : archive.entries()) {
      if (entry.name.size() >= 8 && entry.name.compare(entry.name.size() - 8, 8, "data.pkl") == 0) {
        std::string buffer;
        seeds.add("pickle-" + name, mode(1), std::string(archive.read(entry, buffer)));
      }
    }
  } catch (const tabby::Error& e) {
    std::cerr << "skipping the pickle of " << name << ": " << e.what() << "\n";
  }
}

void write_pth_seeds(const fs::path& dir, const std::vector<fs::path>& extra) {
  SeedWriter seeds(dir);
  int i = 0;
  for (const auto& dict : sample_state_dicts()) add_pth_seed(seeds, "tabby" + std::to_string(i++), tabby::serialize_pth(dict));
  for (const auto& path : extra) {
    try {
      add_pth_seed(seeds, path.filename().string(), tabby::read_file(path));
    } catch (const tabby::Error& e) {
      std::cerr << e.what() << "\n";
    }
  }
  std::cout << dir.filename().string() << ": " << seeds.count() << " seeds\n";
}

// ---- text formats -----------------------------------------------------------------------

void write_model_config_seeds(const fs::path& dir) {
  SeedWriter seeds(dir);
  for (const auto& name : tabby::preset_names()) {
    if (auto text = tabby::preset_toml(name)) seeds.add("preset-" + name, "", *text);
  }
  seeds.add("shorthand", "", R"(name = "pets"
backbone = "mobilenet_v2"
weights = "none"
freeze_backbone = false
bn_inference = true
preprocessing = "tf"
pooling = "max"
[[augment]]
type = "RandomFlip"
mode = "horizontal"
[[augment]]
type = "RandomZoom"
height_factor = [-0.2, 0.1]
width_factor = 0.1
fill_mode = "reflect"
[[layers]]
type = "Dropout"
rate = 0.3
[[layers]]
type = "Dense"
[train]
epochs = 3
batch_size = 16
optimizer = "sgd"
momentum = 0.9
learning_rate = 1e-2
weight_decay = 0.0
seed = 42
fine_tune_last = 2
fine_tune_epochs = 1
fine_tune_lr = 1e-5
keep = "best"
best_monitor = "val_loss"
feature_cache = "off"
threads = 1
image_size = [160, 160]
early_stopping = { monitor = "val_accuracy", patience = 2, min_delta = 0.01, restore_best_weights = false }
reduce_lr = { factor = 0.5, patience = 1, min_lr = 1e-6 }
)");
  seeds.add("explicit", "", R"(name = 'explicit'
description = """multi
line"""
[[layers]]
type = "Normalization"
mean = [0.5, 0.5, 0.5]
std = [0.25, 0.25, 0.25]
scale = 0.00392156862745098
[[layers]]
type = "Conv2D"
name = "stem"
filters = 8
kernel_size = [3, 5]
strides = [1, 2]
padding = "same"
use_bias = false
[[layers]]
type = "BatchNormalization"
momentum = 0.99
epsilon = 1e-3
[[layers]]
type = "Activation"
activation = "relu"
[[layers]]
type = "AveragePooling2D"
pool_size = [2, 2]
[[layers]]
type = "GlobalMaxPooling2D"
[[layers]]
type = "Dense"
units = 4
activation = "softmax"
[train]
early_stopping = true
reduce_lr = false
)");
  seeds.add("backbone-layer", "", R"([[layers]]
type = "Rescaling"
scale = 1.0
offset = 0
[[layers]]
type = "RandomTranslation"
height_factor = 0.1
width_factor = 0.1
[[layers]]
type = "RandomContrast"
factor = 0.2
[[layers]]
type = "RandomRotation"
factor = [-0.1, 0.2]
fill_mode = "nearest"
[[layers]]
type = "Backbone"
arch = "resnet18"
weights = "imagenet"
include_top = true
trainable = false
)");
  std::cout << dir.filename().string() << ": " << seeds.count() << " seeds\n";
}

void write_csv_and_split_seeds(const fs::path& dir) {
  SeedWriter seeds(dir);
  seeds.add("csv-plain", mode(0), "path,label\na.jpg,cats\nb.png,dogs\n");
  seeds.add("csv-quoted", mode(0), "\xEF\xBB\xBF\"file, name\",\"la\"\"bel\"\r\n\"multi\nline\", x \r\n\r\n\"\",\n");
  seeds.add("splits-simple", mode(1), "train");
  seeds.add("splits-union", mode(1), "train[:40%] + validation[-10%:]");
  seeds.add("splits-counts", mode(1), "test[1_000:2000]+all[-3:]");
  seeds.add("splits-decimal", mode(1), "train[10.5%:20.25%]");
  seeds.add("dataset", mode(2), "path,label\na.jpg,cats\nb.png,dogs\nsub/c.jpg,cats\n");
  seeds.add("dataset-numeric", mode(2), "filename,class,extra\na.jpg,10,x\nb.png,9,y\n");
  seeds.add("dataset-classes", mode(2 + 9), "image_path,category\n\"a.jpg\",cats\n./sub/c.jpg, dogs \n");
  std::cout << dir.filename().string() << ": " << seeds.count() << " seeds\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: make_seeds OUTDIR [FILE.pth ...]\n";
    return 2;
  }
  const fs::path out = argv[1];
  std::vector<fs::path> extra_pth(argv + 2, argv + argc);
  try {
    write_image_seeds(out / "decode_image");
    write_safetensors_seeds(out / "safetensors");
    write_pth_seeds(out / "pth", extra_pth);
    write_model_config_seeds(out / "model_config");
    write_csv_and_split_seeds(out / "csv_and_splits");
  } catch (const std::exception& e) {
    std::cerr << "make_seeds: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
