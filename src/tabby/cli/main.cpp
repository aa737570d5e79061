// tabby: train, evaluate and serve image classifiers from the command line.
// Exit codes: 0 success, 1 failure (bad data, bad files, diverged training),
// 2 wrong usage (unknown flags, bad values).
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "tabby/cli/commands.h"
#include "tabby/util/error.h"
#include "tabby/util/log.h"

namespace {

void print_error(const std::string& what, const std::string& hint) {
  // "[rank N] " in a data-parallel job, so each rank's error is told apart.
  const char* prefix = tabby::log::prefix().c_str();
  std::fprintf(stderr, "%serror: %s\n", prefix, what.c_str());
  if (!hint.empty()) std::fprintf(stderr, "%s  hint: %s\n", prefix, hint.c_str());
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// CLI11 reports a mistyped command as "A subcommand is required", which hides the typo;
// name the word the user typed, the closest command and the list instead.
bool report_unknown_command(int argc, char** argv, const std::vector<tabby::cli::Command>& commands) {
  std::string word;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (!arg.empty() && arg[0] == '-') continue;
    word = arg;
    break;
  }
  if (word.empty()) return false;
  std::string names, closest;
  std::size_t best = word.size();
  for (const auto& c : commands) {
    const std::string& name = c.app->get_name();
    if (name == word) return false;
    names += (names.empty() ? "" : ", ") + name;
    std::size_t d = edit_distance(word, name);
    if (d < best) best = d, closest = name;
  }
  std::string hint = best <= 2 ? "did you mean `tabby " + closest + "`? " : "";
  print_error("unknown command '" + word + "'", hint + "commands: " + names + " (see `tabby --help`)");
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  tabby::cli::set_program_arguments(argc, argv);
  CLI::App app{"tabby: train, evaluate and use image classifiers from folders of photos (C++/LibTorch)", "tabby"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("tabby ") + TABBY_VERSION);
  bool quiet = false;
  app.add_flag("-q,--quiet", quiet, "Only errors and results; no progress on stderr");
  app.footer("Run `tabby COMMAND --help` for a command's options. Documentation: README.md");

  std::vector<tabby::cli::Command> commands = {
      tabby::cli::add_train(app), tabby::cli::add_evaluate(app), tabby::cli::add_predict(app),
      tabby::cli::add_summary(app), tabby::cli::add_demo(app), tabby::cli::add_inspect(app),
      tabby::cli::add_report(app), tabby::cli::add_run(app),     tabby::cli::add_serve(app),
      tabby::cli::add_export(app),   tabby::cli::add_cache(app),   tabby::cli::add_lr_find(app)};

  // Global flags (--quiet) may also follow the command name.
  for (auto& c : commands) c.app->fallthrough();

  if (report_unknown_command(argc, argv, commands)) return 2;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string where = "tabby";
    for (auto* sub : app.get_subcommands()) where += " " + sub->get_name();
    print_error(e.what(), "run `" + where + " --help` for the options");
    return 2;
  }
  tabby::log::set_quiet(quiet);

  try {
    for (auto& c : commands) {
      if (c.app->parsed()) return c.run();
    }
    print_error("no command given", "run `tabby --help`");
    return 2;
  } catch (const tabby::UsageError& e) {
    print_error(e.what(), e.hint());
    return 2;
  } catch (const tabby::Error& e) {
    print_error(e.what(), e.hint());
    return 1;
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    print_error("LibTorch: " + msg.substr(0, msg.find('\n')), "this is likely a bug in tabby; please report it");
    return 1;
  } catch (const std::bad_alloc&) {
    print_error("out of memory", "use a smaller --batch-size or --image-size");
    return 1;
  } catch (const std::exception& e) {
    print_error(e.what(), "");
    return 1;
  }
}
