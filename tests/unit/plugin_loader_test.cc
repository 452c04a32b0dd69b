// The plugin loader and host: a test plugin that loads and runs, and each way one is refused.
//
// The test plugins are test_plugins/hooks_test_plugin.cc, built as hooks_test_plugin_<kind>.so;
// the tests find them in $MQTTSPEC_TEST_PLUGIN_DIR, else in the directory compiled in as
// MQTTSPEC_TEST_PLUGIN_DIR.

#include "hooks/plugin_loader.h"

#include <gtest/gtest.h>
#include <mqttspec/plugin.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "hooks/plugin_host.h"
#include "tests/unit/hooks_fixtures.h"

#ifndef MQTTSPEC_TEST_PLUGIN_DIR
#define MQTTSPEC_TEST_PLUGIN_DIR ""
#endif

namespace mqttspec::server {
namespace {

using hooks::CorePluginHost;
using hooktest::RouterHooksTest;

std::string TestPlugin(const std::string& kind) {
  const char* env = std::getenv("MQTTSPEC_TEST_PLUGIN_DIR");
  std::string dir = env && *env ? env : MQTTSPEC_TEST_PLUGIN_DIR;
  return dir + "/hooks_test_plugin_" + kind + ".so";
}

class PluginLoaderTest : public RouterHooksTest {
 protected:
  void SetUp() override {
    RouterHooksTest::SetUp();
    host_ = std::make_unique<CorePluginHost>(hooks_, models_, *db_, true);
  }
  // Loads the test plugin `kind`, which must exist (so a failure is the loader's verdict, not a
  // missing file).
  Status Load(const std::string& kind, const PluginOptions& options = {}) {
    std::string path = TestPlugin(kind);
    EXPECT_TRUE(std::filesystem::exists(path))
        << path << " is missing: build the hooks_test_plugin_* targets, or set "
        << "MQTTSPEC_TEST_PLUGIN_DIR";
    return hooks::LoadPlugin(path, options, *host_);
  }
  std::unique_ptr<CorePluginHost> host_;
  const PluginOptions options_{{"field", "tenant"}, {"value", "from-plugin"}};
};

TEST_F(PluginLoaderTest, AGoodPluginLoadsWithItsOptionsAndItsHooksRun) {
  auto st = Load("ok", options_);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_TRUE(hooks_.Has(HookType::kBeforeCreate));
  auto c = Send(R"({"id":"c","operation":"create","entity":"users","data":{"name":"Ann"}})");
  ASSERT_EQ(CodeOf(c), "success") << MessageOf(c);
  EXPECT_STREQ(c["data"]["tenant"].GetString(), "from-plugin");
}

TEST_F(PluginLoaderTest, WrongAbiVersionIsRefusedNamingThePathAndInitIsNotCalled) {
  auto st = Load("wrong_abi", options_);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(TestPlugin("wrong_abi")), std::string::npos)
      << st.error().message;
  EXPECT_NE(st.error().message.find("ABI"), std::string::npos) << st.error().message;
  EXPECT_EQ(hooks_.count(), 0u);
}

TEST_F(PluginLoaderTest, LibraryWithoutTheEntryPointsIsRefusedNamingThePath) {
  auto st = Load("no_entry_points", options_);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(TestPlugin("no_entry_points")), std::string::npos)
      << st.error().message;
  EXPECT_NE(st.error().message.find("mqttspec_plugin_init"), std::string::npos)
      << st.error().message;
}

TEST_F(PluginLoaderTest, InitReturningFalseIsRefusedNamingThePath) {
  auto st = Load("init_false", options_);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(TestPlugin("init_false")), std::string::npos)
      << st.error().message;
  EXPECT_NE(st.error().message.find("init"), std::string::npos) << st.error().message;
  // The good plugin without its required options: its init fails the same way.
  auto st2 = Load("ok");
  ASSERT_FALSE(st2.ok());
  EXPECT_NE(st2.error().message.find(TestPlugin("ok")), std::string::npos) << st2.error().message;
}

TEST_F(PluginLoaderTest, InitThrowingIsRefusedNamingThePathAndTheReason) {
  auto st = Load("init_throws", options_);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(TestPlugin("init_throws")), std::string::npos)
      << st.error().message;
  EXPECT_NE(st.error().message.find("refuses to start"), std::string::npos) << st.error().message;
}

TEST_F(PluginLoaderTest, NonexistentOrNonLibraryFileIsRefusedNamingThePath) {
  const std::string missing = "/nonexistent/dir/libnot_there.so";
  auto st = hooks::LoadPlugin(missing, {}, *host_);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(missing), std::string::npos) << st.error().message;
  // A file that exists but is no shared library.
  const std::string not_elf = std::filesystem::temp_directory_path() /
                              ("hooks_test_not_a_library_" + std::to_string(::getpid()) + ".so");
  { std::ofstream(not_elf) << "this is not an ELF file\n"; }
  auto st2 = hooks::LoadPlugin(not_elf, {}, *host_);
  std::filesystem::remove(not_elf);
  ASSERT_FALSE(st2.ok());
  EXPECT_NE(st2.error().message.find(not_elf), std::string::npos) << st2.error().message;
  EXPECT_EQ(hooks_.count(), 0u);
}

}  // namespace
}  // namespace mqttspec::server
