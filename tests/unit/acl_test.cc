#include "server/embedded/acl.h"

#include <gtest/gtest.h>

namespace mqttspec::server::embedded {
namespace {

bool Pub(const char* id, const char* topic) { return AclAllows("spec", id, Access::kWrite, topic); }
bool Read(const char* id, const char* topic) { return AclAllows("spec", id, Access::kRead, topic); }
bool Sub(const char* id, const char* filter) {
  return AclAllows("spec", id, Access::kSubscribe, filter);
}

TEST(Acl, ClientPublishesOnlyToItsOwnRequestTopic) {
  EXPECT_TRUE(Pub("a", "spec/a/request"));
  EXPECT_FALSE(Pub("a", "spec/b/request"));
  EXPECT_FALSE(Pub("a", "spec/a/response"));
  EXPECT_FALSE(Pub("a", "spec/a/notify/s1"));
  EXPECT_FALSE(Pub("a", "spec/a/request/x"));
  EXPECT_FALSE(Pub("a", "spec/a"));
  EXPECT_TRUE(Pub("a", "sensors/1/temp"));  // outside the tree: a plain broker
  EXPECT_TRUE(Pub("a", "specs/b/request"));
}

TEST(Acl, NobodyReceivesRequestsAndOnlyTheOwnerItsAnswers) {
  EXPECT_FALSE(Read("a", "spec/a/request"));
  EXPECT_FALSE(Read("b", "spec/a/request"));
  EXPECT_TRUE(Read("a", "spec/a/response"));
  EXPECT_TRUE(Read("a", "spec/a/notify/s1"));
  EXPECT_FALSE(Read("b", "spec/a/response"));
  EXPECT_FALSE(Read("b", "spec/a/notify/s1"));
  EXPECT_TRUE(Read("b", "sensors/1/temp"));
}

// The device twin (docs/protocol.md §13): a device publishes only its own reports and get, and
// receives only its own requests; reports and gets are consumed like requests.
TEST(Acl, DeviceTwinTopicsAreTheDevicesOwn) {
  EXPECT_TRUE(Pub("d1", "spec/d1/twin/reports/software_version"));
  EXPECT_TRUE(Pub("d1", "spec/d1/twin/get"));
  EXPECT_FALSE(Pub("d2", "spec/d1/twin/reports/software_version"));
  EXPECT_FALSE(Pub("d2", "spec/d1/twin/get"));
  EXPECT_FALSE(Pub("d1", "spec/d1/twin/requests/software_version"));  // only the service
  EXPECT_FALSE(Pub("d1", "spec/d1/twin/reports/a/b"));                // one level
  EXPECT_FALSE(Pub("d1", "spec/d1/twin/reports/"));
  EXPECT_FALSE(Pub("d1", "spec/d1/twin/get/x"));
  EXPECT_FALSE(Pub("d1", "spec/d1/twin"));
  EXPECT_TRUE(Read("d1", "spec/d1/twin/requests/software_version"));
  EXPECT_FALSE(Read("d2", "spec/d1/twin/requests/software_version"));
  EXPECT_FALSE(Read("d1", "spec/d1/twin/reports/software_version"));
  EXPECT_FALSE(Read("d2", "spec/d1/twin/reports/software_version"));
  EXPECT_FALSE(Read("d1", "spec/d1/twin/get"));
}

TEST(Acl, AnyValidFilterMaySubscribeIsolationIsAtDelivery) {
  // Issue 12: a broker's users subscribe to '#' and '+/…'; what reaches them is decided by Read.
  for (const char* f : {"#", "+/+", "+/+/+", "spec/#", "spec/+/response", "spec/b/response",
                        "spec/a/#", "spec/a/request", "$share/g/spec/#", "sensors/#", "/#"}) {
    EXPECT_TRUE(Sub("a", f)) << f;
    EXPECT_TRUE(AclAllows("spec", "a", Access::kUnsubscribe, f)) << f;
  }
  // What '#' then delivers to a: its own answers and ordinary topics, nothing of b, no request.
  EXPECT_TRUE(Read("a", "spec/a/response"));
  EXPECT_TRUE(Read("a", "spec/a/replies/7"));
  EXPECT_TRUE(Read("a", "sensors/1/temp"));
  EXPECT_TRUE(Read("a", "spec"));
  EXPECT_FALSE(Read("a", "spec/b/response"));
  EXPECT_FALSE(Read("a", "spec/b/notify/s1"));
  EXPECT_FALSE(Read("a", "spec/b/request"));
  EXPECT_FALSE(Read("a", "spec/a/request"));
  EXPECT_FALSE(Read("a", "spec/"));
  EXPECT_FALSE(Read("a", "spec//response"));
  EXPECT_FALSE(Read("a", "spec/ab/response"));  // a prefix of another id is another id
  EXPECT_FALSE(Read("ab", "spec/a/response"));
}

TEST(Acl, TheWildcardIdPlusDoesNotGetEveryTree) {
  // MOSQUITTO.md §5: a client with id '+' must not match spec/<anyone>/… (such ids are refused at
  // CONNECT too).
  EXPECT_FALSE(Sub("+", "spec/+/response"));
  EXPECT_FALSE(Read("+", "spec/b/response"));
  EXPECT_FALSE(IsValidClientId("+"));
  EXPECT_FALSE(IsValidClientId("a#"));
  EXPECT_FALSE(IsValidClientId("a/b"));
  EXPECT_FALSE(IsValidClientId(""));
  EXPECT_FALSE(IsValidClientId(std::string(129, 'x')));
  EXPECT_TRUE(IsValidClientId(std::string(128, 'x')));
  EXPECT_TRUE(IsValidClientId("client-abc123"));
}

TEST(Acl, AnotherPrefixMovesTheTree) {
  EXPECT_TRUE(AclAllows("myapp", "a", Access::kWrite, "myapp/a/request"));
  EXPECT_FALSE(AclAllows("myapp", "a", Access::kWrite, "myapp/b/request"));
  EXPECT_TRUE(AclAllows("myapp", "a", Access::kWrite, "spec/b/request"));
}

}  // namespace
}  // namespace mqttspec::server::embedded
