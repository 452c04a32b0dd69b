// The Service with hooks: every hook type fires where it should; connect hooks may refuse.

#include <gtest/gtest.h>
#include <mqttspec/plugin.h>
#include <rapidjson/document.h>

#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "hooks/hook_registry.h"
#include "server/config.h"
#include "server/core.h"
#include "server/mqtt_front.h"
#include "server/service.h"
#include "server/transport.h"
#include "tests/unit/fakes.h"
#include "tests/unit/hooks_fixtures.h"

namespace mqttspec::server {
namespace {

using hooktest::CodeName;

class ServiceHooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cfg = ParseConfig(R"(
models:
  - name: things
    fields: [{name: id, type: integer, auto_increment: true}, {name: n, type: integer}]
)");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    config_ = cfg.value();
    config_.workers = 2;
    config_.database.path = ":memory:";
    auto core = Core::Create(config_);
    ASSERT_TRUE(core.ok()) << core.error().message;
    core_ = std::move(core).value();
    service_ = std::make_unique<Service>(config_, *core_, publisher_);
    front_ = std::make_unique<MqttFront>(config_, *service_, publisher_);
  }

  // Sends a request as `client` and returns its answer (response or pong, by request id).
  rapidjson::Document Request(const std::string& client, const std::string& id,
                              const std::string& body) {
    InboundMessage m;
    m.topic = "spec/" + client + "/request";
    m.payload = R"({"id":")" + id + "\"," + body + "}";
    front_->OnMessage(std::move(m));
    service_->Drain();
    std::lock_guard l(publisher_.mu);
    for (const auto& out : publisher_.sent) {
      rapidjson::Document d;
      d.Parse(out.payload.c_str());
      if (!d.HasParseError() && d.IsObject() && d.HasMember("id") && d["id"].IsString() &&
          id == d["id"].GetString())
        return d;
    }
    ADD_FAILURE() << "no answer to " << id;
    return rapidjson::Document();
  }

  Config config_;
  std::unique_ptr<Core> core_;
  RecordingTransport publisher_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<MqttFront> front_;
};

bool Succeeded(const rapidjson::Document& d) {
  return d.IsObject() && d.HasMember("success") && d["success"].GetBool();
}

TEST_F(ServiceHooksTest, EveryHookTypeFiresWhereItShould) {
  std::mutex mu;
  std::map<HookType, int> count;
  std::map<HookType, std::vector<std::string> > operations;  // operation() each time
  std::vector<std::string> problems;
  for (int t = 0; t < kHookTypeCount; ++t) {
    const auto type = static_cast<HookType>(t);
    core_->hooks().Register(type, [&, type](HookContext& ctx) {
      std::lock_guard l(mu);
      ++count[type];
      operations[type].push_back(std::string(ctx.operation()));
      if (ctx.type() != type)
        problems.push_back(std::string(hooks::HookTypeName(type)) + " saw type " +
                           std::string(hooks::HookTypeName(ctx.type())));
      if (ctx.client().id != "dev1")
        problems.push_back(std::string(hooks::HookTypeName(type)) + " saw client " +
                           ctx.client().id);
      const bool has_model = !ctx.operation().empty() && ctx.operation() != "unsubscribe";
      if ((ctx.model() != nullptr) != has_model)
        problems.push_back(std::string(hooks::HookTypeName(type)) + " model presence wrong");
      return HookResult::kContinue;
    });
  }
  auto client = std::make_shared<ClientInfo>();
  client->id = "dev1";
  client->username = "user";
  client->password = "pw";
  ASSERT_TRUE(service_->Authenticate(*client).ok());
  service_->OnClientConnected(client, true);
  service_->Drain();

  ASSERT_TRUE(
      Succeeded(Request("dev1", "c", R"("operation":"create","entity":"things","data":{"n":1})")));
  ASSERT_TRUE(Succeeded(Request("dev1", "l", R"("operation":"read","entity":"things")")));
  ASSERT_TRUE(
      Succeeded(Request("dev1", "k", R"("operation":"read","entity":"things","record_id":1)")));
  auto sub =
      Request("dev1", "s", R"("type":"subscription","operation":"subscribe","entity":"things")");
  ASSERT_TRUE(Succeeded(sub));
  ASSERT_TRUE(Succeeded(Request(
      "dev1", "u", R"("operation":"update","entity":"things","record_id":1,"data":{"n":2})")));
  ASSERT_TRUE(Succeeded(Request(
      "dev1", "x",
      std::string(R"("type":"subscription","operation":"unsubscribe","subscription_id":")") +
          sub["data"]["subscription_id"].GetString() + "\"")));
  ASSERT_TRUE(
      Succeeded(Request("dev1", "d", R"("operation":"delete","entity":"things","record_id":1)")));
  ASSERT_TRUE(Succeeded(Request("dev1", "m", R"("operation":"meta","entity":"things")")));
  Request("dev1", "p", R"("type":"ping")");  // no hooks at all
  service_->OnClientDisconnected(client, true);
  service_->Drain();

  std::lock_guard l(mu);
  const std::map<HookType, int> expected = {
      {HookType::kBeforeConnect, 1},
      {HookType::kAfterConnect, 1},
      {HookType::kBeforeDisconnect, 1},
      {HookType::kAfterDisconnect, 1},
      // create, list read, by-key read, subscribe, update, delete, meta: the requests with a model
      {HookType::kBeforeHandle, 7},
      {HookType::kBeforeRead, 2},
      {HookType::kAfterRead, 2},
      {HookType::kBeforeCreate, 1},
      {HookType::kAfterCreate, 1},
      {HookType::kBeforeUpdate, 1},
      {HookType::kAfterUpdate, 1},
      {HookType::kBeforeDelete, 1},
      {HookType::kAfterDelete, 1},
      {HookType::kBeforeSubscribe, 1},
      {HookType::kAfterSubscribe, 1},
      {HookType::kBeforeUnsubscribe, 1},
      {HookType::kAfterUnsubscribe, 1},
  };
  ASSERT_EQ(expected.size(), 17u);
  for (const auto& [type, n] : expected) EXPECT_EQ(count[type], n) << hooks::HookTypeName(type);
  EXPECT_EQ(problems, std::vector<std::string>{});
  EXPECT_EQ(operations[HookType::kBeforeConnect], std::vector<std::string>{""});
  EXPECT_EQ(operations[HookType::kAfterDisconnect], std::vector<std::string>{""});
  EXPECT_EQ(operations[HookType::kBeforeRead], (std::vector<std::string>{"read", "read"}));
  EXPECT_EQ(operations[HookType::kAfterCreate], std::vector<std::string>{"create"});
  EXPECT_EQ(operations[HookType::kBeforeUpdate], std::vector<std::string>{"update"});
  EXPECT_EQ(operations[HookType::kAfterDelete], std::vector<std::string>{"delete"});
  EXPECT_EQ(operations[HookType::kBeforeSubscribe], std::vector<std::string>{"subscribe"});
  EXPECT_EQ(operations[HookType::kAfterUnsubscribe], std::vector<std::string>{"unsubscribe"});
  EXPECT_EQ(operations[HookType::kBeforeHandle],
            (std::vector<std::string>{"create", "read", "read", "subscribe", "update", "delete",
                                      "meta"}));
}

TEST_F(ServiceHooksTest, ConnectHooksSeeCredentialsAndTheirMetadataReachLaterRequests) {
  std::mutex mu;
  std::string password_at_connect = "unset", password_later = "unset", tenant_later, username_later;
  core_->hooks().Register(HookType::kBeforeConnect, [&](HookContext& ctx) {
    std::lock_guard l(mu);
    password_at_connect = ctx.client().password;
    ctx.client().metadata["tenant_id"] = "t-" + ctx.client().username;
    return HookResult::kContinue;
  });
  core_->hooks().Register(HookType::kBeforeRead, [&](HookContext& ctx) {
    std::lock_guard l(mu);
    password_later = ctx.client().password;
    tenant_later = ctx.client().metadata["tenant_id"];
    username_later = ctx.client().username;
    return HookResult::kContinue;
  });
  auto client = std::make_shared<ClientInfo>();
  client->id = "dev2";
  client->username = "alice";
  client->password = "s3cret";
  ASSERT_TRUE(service_->Authenticate(*client).ok());
  service_->OnClientConnected(client, true);
  ASSERT_TRUE(Succeeded(Request("dev2", "r", R"("operation":"read","entity":"things")")));
  std::lock_guard l(mu);
  EXPECT_EQ(password_at_connect, "s3cret");
  EXPECT_EQ(password_later, "");  // dropped once connected
  EXPECT_EQ(tenant_later, "t-alice");
  EXPECT_EQ(username_later, "alice");
}

TEST_F(ServiceHooksTest, BeforeConnectAbortOrThrowRefusesTheConnect) {
  core_->hooks().Register(HookType::kBeforeConnect, [](HookContext& ctx) {
    if (ctx.client().username == "eve") return ctx.Abort("eve is banned");
    if (ctx.client().username == "crash") throw std::runtime_error("boom");
    return HookResult::kContinue;
  });
  ClientInfo eve{"e1", "eve", "pw", {}};
  auto st = service_->Authenticate(eve);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(CodeName(st.error()), "forbidden");
  EXPECT_EQ(st.error().message, "eve is banned");
  ClientInfo crash{"e2", "crash", "pw", {}};
  auto st2 = service_->Authenticate(crash);
  ASSERT_FALSE(st2.ok());
  EXPECT_EQ(CodeName(st2.error()), "hook_error");
  ClientInfo ok{"e3", "bob", "pw", {}};
  EXPECT_TRUE(service_->Authenticate(ok).ok());
}

}  // namespace
TEST_F(ServiceHooksTest, ATakeoversNewConnectionKeepsItsStateWhenTheOldOnesDisconnectIsProcessed) {
  // Found by the SECURITY.md review: the old connection's disconnect removed the client state by
  // id on a worker, after the new connection (same id) had stored its own on the broker thread.
  auto old_conn = std::make_shared<ClientInfo>();
  old_conn->id = "dev9";
  old_conn->metadata["tenant_id"] = "old";
  service_->OnClientConnected(old_conn, false);
  auto new_conn = std::make_shared<ClientInfo>();
  new_conn->id = "dev9";
  new_conn->metadata["tenant_id"] = "new";
  service_->OnClientConnected(new_conn, false);  // takeover: stored at once
  service_->OnClientDisconnected(old_conn, false);
  service_->Drain();
  EXPECT_EQ(core_->clients().Get("dev9")->metadata["tenant_id"], "new");
}

}  // namespace mqttspec::server
