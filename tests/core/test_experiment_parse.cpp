// Experiment files: what a good file parses to, and that every kind of
// mistake is caught before training with a message naming the file.
#include <gtest/gtest.h>

#include <fstream>

#include "support/test_support.h"
#include "tabby/config/experiment_spec.h"
#include "tabby/config/presets.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"

namespace tabby {
namespace {

const char* kGood = R"toml(
name = "demo"
description = "two models"
out = "runs/demo"

[data]
data = "/data/pets"
split = "train[:40%]"
val_split = "train[40%:50%]"
test_split = "train[50%:60%]"
seed = 7
image_size = 150

[train]
epochs = 20
batch_size = 64
early_stopping = { patience = 3 }

[[models]]
name = "1-cnn"
model = "tutorial-cnn"

[[models]]
name = "2-mobilenet"
model = "tutorial-mobilenet_v2"
image_size = [160, 128]
weights = "none"
freeze_backbone = true
epochs = 5
lr = 0.0001
early_stopping = { monitor = "val_accuracy" }
)toml";

// The message of the tabby::Error that parsing `text` throws ("" if none).
std::string experiment_error(const std::string& text) {
  try {
    parse_experiment_toml(text, "exp.toml");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string with_data(const std::string& data_table, const std::string& rest = "[[models]]\nname = \"a\"\nmodel = \"tutorial-cnn\"\n") {
  return "[data]\n" + data_table + "\n" + rest;
}

TEST(ExperimentParse, GoodFile) {
  ExperimentSpec s = parse_experiment_toml(kGood, "exp.toml");
  EXPECT_EQ(s.name, "demo");
  EXPECT_EQ(s.description, "two models");
  EXPECT_EQ(s.out, "runs/demo");
  EXPECT_EQ(s.data.data, "/data/pets");
  EXPECT_EQ(s.data.split, "train[:40%]");
  EXPECT_EQ(s.data.val_split, "train[40%:50%]");
  EXPECT_EQ(s.data.test_split, "train[50%:60%]");
  EXPECT_EQ(s.data.seed, 7u);
  ASSERT_TRUE(s.data.image_height);
  EXPECT_EQ(*s.data.image_height, 150);
  EXPECT_EQ(*s.data.image_width, 150);
  ASSERT_EQ(s.models.size(), 2u);

  const ExperimentModel& a = s.models[0];
  EXPECT_EQ(a.name, "1-cnn");
  EXPECT_EQ(a.model, "tutorial-cnn");
  EXPECT_FALSE(a.image_height);
  EXPECT_EQ(a.train["epochs"], 20);
  EXPECT_EQ(a.train["batch_size"], 64);

  const ExperimentModel& b = s.models[1];
  EXPECT_EQ(*b.image_height, 160);
  EXPECT_EQ(*b.image_width, 128);
  EXPECT_EQ(*b.weights, "none");
  EXPECT_TRUE(*b.freeze_backbone);
  EXPECT_FALSE(b.include_top);
  // Model keys override [train]; nested tables merge.
  EXPECT_EQ(b.train["epochs"], 5);
  EXPECT_DOUBLE_EQ(b.train["lr"].get<double>(), 0.0001);
  EXPECT_EQ(b.train["batch_size"], 64);
  EXPECT_EQ(b.train["early_stopping"]["patience"], 3);
  EXPECT_EQ(b.train["early_stopping"]["monitor"], "val_accuracy");
  EXPECT_FALSE(b.train.contains("name"));
  EXPECT_FALSE(b.train.contains("weights"));

  EXPECT_EQ(s.find_model("2-mobilenet"), &s.models[1]);
  EXPECT_EQ(s.find_model("nope"), nullptr);
}

TEST(ExperimentParse, DefaultsAndImageSizeForms) {
  ExperimentSpec s = parse_experiment_toml(with_data("data = \"d\"\nimage_size = \"160x120\""), "x.toml", "stem");
  EXPECT_EQ(s.name, "stem");
  EXPECT_EQ(s.data.seed, 1337u);
  EXPECT_EQ(*s.data.image_height, 160);
  EXPECT_EQ(*s.data.image_width, 120);
  EXPECT_TRUE(s.models[0].train.is_object());
  EXPECT_TRUE(s.models[0].train.empty());
}

TEST(ExperimentParse, FingerprintChangesWithSettings) {
  ExperimentSpec s = parse_experiment_toml(kGood, "exp.toml");
  auto a = model_fingerprint(s, s.models[0]);
  EXPECT_EQ(a, model_fingerprint(s, s.models[0]));
  EXPECT_NE(a, model_fingerprint(s, s.models[1]));
  ExperimentModel changed = s.models[0];
  changed.train["epochs"] = 1;
  EXPECT_NE(a, model_fingerprint(s, changed));
  ExperimentSpec other_data = s;
  other_data.data.seed = 8;
  EXPECT_NE(a, model_fingerprint(other_data, s.models[0]));
}

struct BadExperimentCase {
  const char* what;
  std::string text;
  const char* expected;  // a piece of the message
};

TEST(ExperimentParse, MistakesNameTheFileAndTheProblem) {
  const std::string model = "[[models]]\nname = \"a\"\nmodel = \"tutorial-cnn\"\n";
  const std::vector<BadExperimentCase> cases = {
      {"toml syntax", "[data\n", "exp.toml:1"},
      {"unknown top key", "nmae = \"x\"\n" + with_data("data = \"d\""), "unknown key 'nmae'"},
      {"no data table", model, "[data] table is missing"},
      {"no data path", with_data("split = \"train\""), "`data` is required"},
      {"unknown data key", with_data("data = \"d\"\nvalidation = \"v\""), "unknown key 'validation'"},
      {"no models", "[data]\ndata = \"d\"\n", "no models"},
      {"empty models", "models = []\n[data]\ndata = \"d\"\n", "no models"},
      {"model without name", with_data("data = \"d\"", "[[models]]\nmodel = \"tutorial-cnn\"\n"),
       "`name` is required"},
      {"model without model", with_data("data = \"d\"", "[[models]]\nname = \"a\"\n"), "`model` is required"},
      {"duplicate names", with_data("data = \"d\"", model + model), "two models are named 'a'"},
      {"unsafe name", with_data("data = \"d\"", "[[models]]\nname = \"../x\"\nmodel = \"m\"\n"),
       "usable as a folder name"},
      {"bad split spec", with_data("data = \"d\"\nsplit = \"train[:40%\""), "`split` = 'train[:40%'"},
      {"bad val split", with_data("data = \"d\"\nsplit = \"train\"\nval_split = \"train[60%:40%]\""),
       "`val_split`"},
      {"mixed units", with_data("data = \"d\"\nsplit = \"train[10:50%]\""), "`split`"},
      {"val_split without split", with_data("data = \"d\"\nval_split = \"train[:10%]\""), "need `split`"},
      {"two validation ways", with_data("data = \"d\"\nval = \"v\"\nvalidation_split = 0.2"), "only one of val"},
      {"fraction out of range", with_data("data = \"d\"\nvalidation_split = 1.5"), "`validation_split` must be"},
      {"fraction wrong type", with_data("data = \"d\"\ntest_fraction = \"0.1\""), "`test_fraction` must be"},
      {"fractions too large", with_data("data = \"d\"\nvalidation_split = 0.6\ntest_fraction = 0.5"),
       "must be less than 1"},
      {"bad image size", with_data("data = \"d\"\nimage_size = 3"), "`image_size` must be"},
      {"bad image size text", with_data("data = \"d\"\nimage_size = \"big\""), "`image_size` must be"},
      {"unknown train key", "[train]\nepoch = 3\n" + with_data("data = \"d\""), "unknown key 'epoch'"},
      {"bad train value", "[train]\nepochs = 0\n" + with_data("data = \"d\""), "epochs must be at least 1"},
      {"train wrong type", "[train]\nlr = \"fast\"\n" + with_data("data = \"d\""), "`lr` must be a number"},
      {"seed in train", "[train]\nseed = 3\n" + with_data("data = \"d\""), "`seed` belongs in [data]"},
      {"unknown model key", with_data("data = \"d\"", "[[models]]\nname = \"a\"\nmodel = \"m\"\nfreeze = true\n"),
       "unknown key 'freeze'"},
      {"bad model train value", with_data("data = \"d\"", "[[models]]\nname = \"a\"\nmodel = \"m\"\noptimizer = \"rmsprop\"\n"),
       "unknown optimizer"},
      {"model weights type", with_data("data = \"d\"", "[[models]]\nname = \"a\"\nmodel = \"m\"\nweights = 3\n"),
       "`weights` must be a string"},
  };
  for (const auto& c : cases) {
    const std::string msg = experiment_error(c.text);
    EXPECT_NE(msg.find("exp.toml"), std::string::npos) << c.what << ": " << msg;
    EXPECT_NE(msg.find(c.expected), std::string::npos) << c.what << ": got '" << msg << "'";
  }
  // Per-model errors say which model.
  EXPECT_NE(experiment_error(with_data("data = \"d\"", "[[models]]\nname = \"m2\"\nmodel = \"m\"\nepochs = -1\n"))
                .find("model 'm2'"),
            std::string::npos);
}

TEST(ExperimentParse, LoadResolvesPathsAgainstTheFileFolder) {
  namespace fs = std::filesystem;
  const fs::path dir = testing::scratch_dir("experiment_parse_paths");
  fs::create_directories(dir / "data" / "cats");
  testing::write_bytes(dir / "mymodel.toml", "name = \"m\"\n");
  testing::write_bytes(dir / "exp.toml",
                       "[data]\ndata = \"data\"\nval = \"missing-everywhere\"\n"
                       "[[models]]\nname = \"a\"\nmodel = \"mymodel.toml\"\n"
                       "[[models]]\nname = \"b\"\nmodel = \"tutorial-cnn\"\n");
  ExperimentSpec s = load_experiment_file(dir / "exp.toml");
  EXPECT_EQ(fs::path(s.data.data), (dir / "data").lexically_normal());
  EXPECT_EQ(s.data.val, "missing-everywhere");  // left as written: the error later names it
  EXPECT_EQ(fs::path(s.models[0].model), (dir / "mymodel.toml").lexically_normal());
  EXPECT_EQ(s.models[1].model, "tutorial-cnn");
  EXPECT_EQ(s.name, "exp");

  try {
    load_experiment_file(dir / "nope.toml");
    FAIL() << "expected an error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.toml"), std::string::npos);
  }
}

// The experiment the project ships: the tutorials' five models, 20 epochs
// each, on one split of PetImages.
TEST(ExperimentParse, ShippedTutorialExperiment) {
  const std::filesystem::path file = std::filesystem::path(TABBY_SOURCE_DIR) / "experiments" / "cats-vs-dogs-tutorial.toml";
  ExperimentSpec s = parse_experiment_toml(read_file(file), file.string(), "x");
  EXPECT_EQ(s.name, "cats-vs-dogs-tutorial");
  EXPECT_EQ(s.data.split, "train[:40%]");
  EXPECT_EQ(s.data.val_split, "train[40%:50%]");
  EXPECT_EQ(s.data.test_split, "train[50%:60%]");
  ASSERT_TRUE(s.data.image_height);
  EXPECT_EQ(*s.data.image_height, 150);
  const std::vector<std::string> presets = {"tutorial-cnn", "tutorial-cnn-flip-rotate", "tutorial-cnn-augmented",
                                            "tutorial-mobilenet_v2", "tutorial-mobilenet_v2"};
  ASSERT_EQ(s.models.size(), presets.size());
  for (size_t i = 0; i < presets.size(); ++i) {
    const ExperimentModel& m = s.models[i];
    EXPECT_EQ(m.model, presets[i]) << m.name;
    EXPECT_TRUE(preset_toml(m.model).has_value()) << m.model;
    const int epochs = m.train.value("epochs", 0) + m.train.value("fine_tune_epochs", 0);
    EXPECT_EQ(epochs, 20) << m.name;
  }
  for (size_t i : {3u, 4u}) {
    ASSERT_TRUE(s.models[i].image_height);
    EXPECT_EQ(*s.models[i].image_height, 160);
    EXPECT_TRUE(s.models[i].freeze_backbone.value_or(false));
  }
  EXPECT_EQ(s.models[3].train.value("fine_tune_epochs", 0), 0);
  EXPECT_GT(s.models[4].train.value("fine_tune_epochs", 0), 0);
  EXPECT_GT(s.models[4].train.value("fine_tune_last", 0), 0);
}

}  // namespace
}  // namespace tabby
