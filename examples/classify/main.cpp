// classify RUN IMAGE...: the label, probability and top 3 of each image, with
// the model of a tabby run folder, through the installed library alone.
#include <tabby/api/classifier.h>
#include <tabby/util/error.h>

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s RUN_FOLDER IMAGE...\n", argv[0]);
    return 2;
  }
  try {
    const tabby::Classifier classifier = tabby::Classifier::load(argv[1], {"cpu", 1});
    std::printf("model %s: %zu classes, %dx%d input\n", classifier.name().c_str(), classifier.class_names().size(),
                classifier.input_width(), classifier.input_height());
    int failed = 0;
    for (int i = 2; i < argc; ++i) {
      try {
        const tabby::Classification c = classifier.classify_file(argv[i], 3);
        std::printf("%s\t%s\t%.6f", argv[i], c.label.c_str(), c.probability);
        for (const auto& s : c.top_k) std::printf("\t%s=%.6f", s.label.c_str(), s.probability);
        std::printf("\n");
      } catch (const tabby::Error& e) {
        std::fprintf(stderr, "%s: %s\n", argv[i], e.what());
        ++failed;
      }
    }
    return failed ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
