// Subscriptions: the index answers exactly the subscriptions whose filters match a row — for
// subscriptions filed under an eq / in key and for those on the scan list (OR lists, groups only,
// no eq/in) alike — with numbers and booleans canonicalized (1 == 1.0 on a real field, true == 1);
// Remove / RemoveClient unindex; the per-client limit; ids and notify topics.
#include "server/subscriptions.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "protocol/filters.h"
#include "protocol/render.h"
#include "server/matcher.h"
#include "tests/unit/test_builders.h"
#include "tests/unit/value_printer.h"

namespace mqttspec::server {
namespace {

using namespace mqttspec::testing;  // NOLINT: the shared test builders

using adapters::FilterList;
using adapters::FilterNode;
using adapters::Logic;
using adapters::Op;
using registry::Field;
using registry::FieldType;
using registry::Model;
using registry::ModelPtr;

enum { kId = 0, kStatus, kN, kR, kB, kTs };

ModelPtr Things(const std::string& entity = "things") {
  auto m =
      Model::Create("public", entity,
                    {MakeField("id", FieldType::kInteger), MakeField("status", FieldType::kText),
                     MakeField("n", FieldType::kInteger), MakeField("r", FieldType::kReal),
                     MakeField("b", FieldType::kBoolean), MakeField("ts", FieldType::kTimestamp)},
                    "id");
  EXPECT_TRUE(m.ok());
  return m.value();
}

Row MakeRow(Value status, Value n = kNull, Value r = kNull, Value b = kNull, Value ts = kNull) {
  return Row{I(1), std::move(status), std::move(n), std::move(r), std::move(b), std::move(ts)};
}

class SubscriptionsTest : public ::testing::Test {
 protected:
  // Adds a subscription of `client` and returns its id (the test fails if Add does).
  std::string Add(const FilterList& filters, const std::string& client = "c1",
                  const ModelPtr& model = nullptr) {
    auto sub = subs_.Add(client, model ? model : model_, filters);
    EXPECT_TRUE(sub.ok()) << (sub.ok() ? "" : sub.error().message);
    return sub.ok() ? sub.value()->id : "";
  }

  std::set<std::string> MatchIds(const Row& row, const ModelPtr& model = nullptr) {
    std::set<std::string> out;
    for (const auto& s : subs_.Match(model ? *model : *model_, row)) {
      EXPECT_TRUE(out.insert(s->id).second) << "subscription " << s->id << " returned twice";
    }
    return out;
  }

  ModelPtr model_ = Things();
  Subscriptions subs_{"spec", 100000};
};

TEST_F(SubscriptionsTest, AddGivesAUniqueIdAndTheClientsNotifyTopic) {
  auto a = subs_.Add("dev-1", model_, {Cond(kStatus, Op::kEq, {S("active")})});
  auto b = subs_.Add("dev-1", model_, {Cond(kStatus, Op::kEq, {S("active")})});
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_NE(a.value()->id, b.value()->id);
  EXPECT_EQ(a.value()->id.rfind("sub-", 0), 0u) << a.value()->id;
  EXPECT_EQ(a.value()->topic, "spec/dev-1/notify/" + a.value()->id);
  EXPECT_EQ(a.value()->client_id, "dev-1");
  EXPECT_EQ(a.value()->seq.load(), 0u);
  EXPECT_EQ(subs_.size(), 2u);
  EXPECT_EQ(subs_.count("dev-1"), 2u);
  EXPECT_EQ(subs_.count("other"), 0u);
}

TEST_F(SubscriptionsTest, EqMatchesOnlyItsValue) {
  const std::string active = Add({Cond(kStatus, Op::kEq, {S("active")})});
  const std::string banned = Add({Cond(kStatus, Op::kEq, {S("banned")})}, "c2");
  EXPECT_EQ(MatchIds(MakeRow(S("active"))), std::set<std::string>{active});
  EXPECT_EQ(MatchIds(MakeRow(S("banned"))), std::set<std::string>{banned});
  EXPECT_TRUE(MatchIds(MakeRow(S("Active"))).empty());
  EXPECT_TRUE(MatchIds(MakeRow(S("other"))).empty());
}

TEST_F(SubscriptionsTest, EqWithFurtherConditionsChecksThemAll) {
  const std::string s = Add({Cond(kStatus, Op::kEq, {S("active")}), Cond(kN, Op::kGt, {I(10)})});
  EXPECT_EQ(MatchIds(MakeRow(S("active"), I(11))), std::set<std::string>{s});
  EXPECT_TRUE(MatchIds(MakeRow(S("active"), I(10))).empty());
  EXPECT_TRUE(MatchIds(MakeRow(S("active"), kNull)).empty());
  EXPECT_TRUE(MatchIds(MakeRow(S("x"), I(11))).empty());
}

TEST_F(SubscriptionsTest, InMatchesEachOfItsValues) {
  const std::string s = Add({Cond(kStatus, Op::kIn, {S("a"), S("b"), S("a")})});
  const std::string t = Add({Cond(kN, Op::kIn, {I(1), I(2)})});
  EXPECT_EQ(MatchIds(MakeRow(S("a"))), std::set<std::string>{s});
  EXPECT_EQ(MatchIds(MakeRow(S("b"))), std::set<std::string>{s});
  EXPECT_TRUE(MatchIds(MakeRow(S("c"))).empty());
  EXPECT_EQ(MatchIds(MakeRow(S("b"), I(2))), (std::set<std::string>{s, t}));
  EXPECT_EQ(MatchIds(MakeRow(S("z"), I(1))), std::set<std::string>{t});
}

TEST_F(SubscriptionsTest, EmptyInMatchesNothingAndEmptyNotInEveryNonNullRow) {
  const std::string none = Add({Cond(kStatus, Op::kIn, {})});
  const std::string all = Add({Cond(kStatus, Op::kNotIn, {})});
  EXPECT_EQ(MatchIds(MakeRow(S("a"))), std::set<std::string>{all});
  EXPECT_TRUE(MatchIds(MakeRow(kNull)).empty());
  (void)none;
}

TEST_F(SubscriptionsTest, OrListsAreNotFiledUnderOneOfTheirConditions) {
  // status = 'a' OR n = 5: a row with n = 5 and another status must still match.
  const std::string s =
      Add({Cond(kStatus, Op::kEq, {S("a")}), Cond(kN, Op::kEq, {I(5)}, Logic::kOr)});
  // status = 'a' AND n = 1 OR b = true
  const std::string t = Add({Cond(kStatus, Op::kEq, {S("a")}), Cond(kN, Op::kEq, {I(1)}),
                             Cond(kB, Op::kEq, {B(true)}, Logic::kOr)});
  EXPECT_EQ(MatchIds(MakeRow(S("a"))), std::set<std::string>{s});
  EXPECT_EQ(MatchIds(MakeRow(S("zz"), I(5))), std::set<std::string>{s});
  EXPECT_EQ(MatchIds(MakeRow(S("zz"), I(7), kNull, I(1))), std::set<std::string>{t});
  EXPECT_EQ(MatchIds(MakeRow(S("a"), I(1))), (std::set<std::string>{s, t}));
  EXPECT_TRUE(MatchIds(MakeRow(S("zz"), I(7))).empty());
}

TEST_F(SubscriptionsTest, GroupsMatchWhetherOrNotAnEqSitsBesideThem) {
  // status = 'a' AND (n = 1 OR n = 2): filed under status, the group still decides.
  const std::string beside =
      Add({Cond(kStatus, Op::kEq, {S("a")}),
           Group({Cond(kN, Op::kEq, {I(1)}), Cond(kN, Op::kEq, {I(2)}, Logic::kOr)})});
  // (status = 'b' OR n = 3) alone: an eq inside a group is not a key.
  const std::string alone =
      Add({Group({Cond(kStatus, Op::kEq, {S("b")}), Cond(kN, Op::kEq, {I(3)}, Logic::kOr)})});
  // An empty group matches every row.
  const std::string empty = Add({Group({})});
  EXPECT_EQ(MatchIds(MakeRow(S("a"), I(2))), (std::set<std::string>{beside, empty}));
  EXPECT_EQ(MatchIds(MakeRow(S("a"), I(3))), (std::set<std::string>{alone, empty}));
  EXPECT_EQ(MatchIds(MakeRow(S("b"), kNull)), (std::set<std::string>{alone, empty}));
  EXPECT_EQ(MatchIds(MakeRow(S("c"), I(9))), std::set<std::string>{empty});
}

TEST_F(SubscriptionsTest, RowsWithNullMatchOnlyNullTolerantFilters) {
  const std::string eq = Add({Cond(kStatus, Op::kEq, {S("a")})});
  const std::string in = Add({Cond(kStatus, Op::kIn, {S("a"), S("b")})});
  const std::string neq = Add({Cond(kStatus, Op::kNeq, {S("a")})});
  const std::string is_null = Add({Cond(kStatus, Op::kIsNull, {})});
  const std::string not_null = Add({Cond(kStatus, Op::kIsNotNull, {})});
  const std::string nothing = Add({});  // no filters: every row
  EXPECT_EQ(MatchIds(MakeRow(kNull)), (std::set<std::string>{is_null, nothing}));
  EXPECT_EQ(MatchIds(MakeRow(S("a"))), (std::set<std::string>{eq, in, not_null, nothing}));
  EXPECT_EQ(MatchIds(MakeRow(S("b"))), (std::set<std::string>{in, neq, not_null, nothing}));
}

TEST_F(SubscriptionsTest, NumbersAreCanonicalizedOnRealFields) {
  // Filter values on a real field are doubles (CoerceJson); rows read back from SQLite too, but a
  // row handed over as the integer 1 must find the same subscription.
  const std::string one = Add({Cond(kR, Op::kEq, {D(1.0)})});
  const std::string half = Add({Cond(kR, Op::kEq, {D(1.5)})});
  const std::string in = Add({Cond(kR, Op::kIn, {D(2.0), D(-0.0)})});
  EXPECT_EQ(MatchIds(MakeRow(S("x"), kNull, D(1.0))), std::set<std::string>{one});
  EXPECT_EQ(MatchIds(MakeRow(S("x"), kNull, I(1))), std::set<std::string>{one});
  EXPECT_EQ(MatchIds(MakeRow(S("x"), kNull, D(1.5))), std::set<std::string>{half});
  EXPECT_EQ(MatchIds(MakeRow(S("x"), kNull, I(2))), std::set<std::string>{in});
  EXPECT_EQ(MatchIds(MakeRow(S("x"), kNull, D(0.0))), std::set<std::string>{in}) << "-0.0 == 0.0";
  EXPECT_TRUE(MatchIds(MakeRow(S("x"), kNull, D(1.0000001))).empty());
  EXPECT_TRUE(MatchIds(MakeRow(S("x"), kNull, D(0.1 + 0.2))).empty());
}

TEST_F(SubscriptionsTest, BooleansAreCanonicalizedAsZeroAndOne) {
  // A boolean from SQLite is the integer 0/1; from a hook or a coerced record, a bool.
  const std::string t = Add({Cond(kB, Op::kEq, {B(true)})});
  const std::string f = Add({Cond(kB, Op::kEq, {B(false)})});
  EXPECT_EQ(MatchIds(MakeRow(S("x"), kNull, kNull, I(1))), std::set<std::string>{t});
  EXPECT_EQ(MatchIds(MakeRow(S("x"), kNull, kNull, B(true))), std::set<std::string>{t});
  EXPECT_EQ(MatchIds(MakeRow(S("x"), kNull, kNull, I(0))), std::set<std::string>{f});
  EXPECT_EQ(MatchIds(MakeRow(S("x"), kNull, kNull, B(false))), std::set<std::string>{f});
  EXPECT_TRUE(MatchIds(MakeRow(S("x"), kNull, kNull, kNull)).empty());
}

TEST_F(SubscriptionsTest, CanonicalKeysAgreeExactlyWhenValuesCompareEqual) {
  EXPECT_EQ(CanonicalKey(FieldType::kReal, D(1.0)), CanonicalKey(FieldType::kReal, I(1)));
  EXPECT_EQ(CanonicalKey(FieldType::kBoolean, B(true)), CanonicalKey(FieldType::kBoolean, I(1)));
  EXPECT_EQ(CanonicalKey(FieldType::kBoolean, B(false)), CanonicalKey(FieldType::kBoolean, I(0)));
  EXPECT_EQ(CanonicalKey(FieldType::kReal, D(-0.0)), CanonicalKey(FieldType::kReal, D(0.0)));
  EXPECT_NE(CanonicalKey(FieldType::kReal, D(1.5)), CanonicalKey(FieldType::kReal, I(1)));
  EXPECT_NE(CanonicalKey(FieldType::kText, S("1")), CanonicalKey(FieldType::kInteger, I(1)));
  EXPECT_NE(CanonicalKey(FieldType::kText, S("a")), CanonicalKey(FieldType::kText, S("A")));
  EXPECT_NE(CanonicalKey(FieldType::kInteger, I(INT64_MAX)),
            CanonicalKey(FieldType::kInteger, I(INT64_MAX - 1)));
  // Random doubles: equal keys iff equal values.
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> small(-4, 4);
  for (int i = 0; i < 2000; ++i) {
    double a = small(rng) / 2.0, b = small(rng) / 2.0;
    EXPECT_EQ(CanonicalKey(FieldType::kReal, D(a)) == CanonicalKey(FieldType::kReal, D(b)), a == b)
        << a << " vs " << b;
  }
}

TEST_F(SubscriptionsTest, SubscriptionsOfOtherEntitiesAreNotConsidered) {
  ModelPtr other = Things("others");
  const std::string mine = Add({Cond(kStatus, Op::kEq, {S("a")})});
  const std::string theirs = Add({Cond(kStatus, Op::kEq, {S("a")})}, "c1", other);
  const std::string theirs_scan = Add({}, "c1", other);
  EXPECT_EQ(MatchIds(MakeRow(S("a"))), std::set<std::string>{mine});
  EXPECT_EQ(MatchIds(MakeRow(S("a")), other), (std::set<std::string>{theirs, theirs_scan}));
}

TEST_F(SubscriptionsTest, RemoveUnindexesTheSubscription) {
  const std::string eq = Add({Cond(kStatus, Op::kEq, {S("a")})});
  const std::string in = Add({Cond(kStatus, Op::kIn, {S("a"), S("b")})});
  const std::string scan = Add({Cond(kN, Op::kGt, {I(0)})});
  const std::string keep = Add({Cond(kStatus, Op::kEq, {S("a")})});
  const Row row = MakeRow(S("a"), I(1));
  ASSERT_EQ(MatchIds(row), (std::set<std::string>{eq, in, scan, keep}));
  EXPECT_TRUE(subs_.Remove("c1", eq).ok());
  EXPECT_TRUE(subs_.Remove("c1", in).ok());
  EXPECT_TRUE(subs_.Remove("c1", scan).ok());
  EXPECT_EQ(MatchIds(row), std::set<std::string>{keep});
  EXPECT_TRUE(MatchIds(MakeRow(S("b"), I(1))).empty());
  EXPECT_EQ(subs_.size(), 1u);
  EXPECT_EQ(subs_.count("c1"), 1u);
  // Removing twice: not_found.
  auto again = subs_.Remove("c1", eq);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
}

TEST_F(SubscriptionsTest, RemovingSomeoneElsesSubscriptionIsNotFoundAndKeepsIt) {
  const std::string s = Add({Cond(kStatus, Op::kEq, {S("a")})}, "owner");
  auto st = subs_.Remove("intruder", s);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(st.error().message.find("owner"), std::string::npos) << "does not reveal the owner";
  auto unknown = subs_.Remove("owner", "sub-0000000000000000");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(MatchIds(MakeRow(S("a"))), std::set<std::string>{s});
  EXPECT_EQ(subs_.count("owner"), 1u);
  EXPECT_EQ(subs_.count("intruder"), 0u);
}

TEST_F(SubscriptionsTest, RemoveClientUnindexesAllOfItsSubscriptionsOnly) {
  for (int i = 0; i < 5; ++i) Add({Cond(kStatus, Op::kEq, {S("a")})}, "leaving");
  Add({Cond(kN, Op::kGt, {I(0)})}, "leaving");
  Add({Cond(kStatus, Op::kIn, {S("a")})}, "leaving");
  const std::string other = Add({Cond(kStatus, Op::kEq, {S("a")})}, "staying");
  const std::string other_scan = Add({Group({})}, "staying");
  EXPECT_EQ(subs_.RemoveClient("leaving"), 7u);
  EXPECT_EQ(subs_.RemoveClient("leaving"), 0u);
  EXPECT_EQ(subs_.RemoveClient("never-seen"), 0u);
  EXPECT_EQ(MatchIds(MakeRow(S("a"), I(1))), (std::set<std::string>{other, other_scan}));
  EXPECT_EQ(subs_.size(), 2u);
  EXPECT_EQ(subs_.count("leaving"), 0u);
}

TEST_F(SubscriptionsTest, PerClientLimitGivesTooManySubscriptions) {
  Subscriptions limited("spec", 3);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto s = limited.Add("c", model_, {Cond(kStatus, Op::kEq, {S("a")})});
    ASSERT_TRUE(s.ok());
    ids.push_back(s.value()->id);
  }
  auto over = limited.Add("c", model_, {Cond(kStatus, Op::kEq, {S("a")})});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::kTooManySubscriptions);
  EXPECT_EQ(limited.count("c"), 3u);
  EXPECT_EQ(limited.Match(*model_, MakeRow(S("a"))).size(), 3u) << "the refused one is not indexed";
  // Another client has its own allowance.
  EXPECT_TRUE(limited.Add("d", model_, {}).ok());
  // Unsubscribing frees a slot; so does RemoveClient.
  ASSERT_TRUE(limited.Remove("c", ids[0]).ok());
  EXPECT_TRUE(limited.Add("c", model_, {}).ok());
  EXPECT_FALSE(limited.Add("c", model_, {}).ok());
  EXPECT_EQ(limited.RemoveClient("c"), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limited.Add("c", model_, {}).ok());
}

TEST_F(SubscriptionsTest, IndexAnswersLikeAScanOverManyRandomSubscriptions) {
  // 2000 random subscriptions (eq / in keys, scan-list ones, ORs, groups) from 20 clients; every
  // row of a grid must get exactly the subscriptions Matches() accepts, before and after a third
  // of them are removed.
  std::mt19937_64 rng(20261122);
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  const std::vector<Value> statuses = {S("a"), S("b"), S("c")};
  const std::vector<Value> reals = {D(0.0), D(1.0), D(1.5), D(2.0)};
  auto random_cond = [&](Logic logic) {
    switch (pick(6)) {
      case 0: return Cond(kStatus, Op::kEq, {statuses[static_cast<size_t>(pick(3))]}, logic);
      case 1:
        return Cond(
            kStatus, Op::kIn,
            {statuses[static_cast<size_t>(pick(3))], statuses[static_cast<size_t>(pick(3))]},
            logic);
      case 2: return Cond(kR, Op::kEq, {reals[static_cast<size_t>(pick(4))]}, logic);
      case 3: return Cond(kB, Op::kEq, {B(pick(2) == 1)}, logic);
      case 4: return Cond(kN, Op::kGt, {I(pick(3))}, logic);
      default: return Cond(kN, Op::kIsNull, {}, logic);
    }
  };
  std::vector<std::pair<std::string, std::shared_ptr<Subscription>>> all;
  for (int i = 0; i < 2000; ++i) {
    FilterList f;
    for (int k = pick(4); k > 0; --k) {
      Logic logic = pick(4) == 0 ? Logic::kOr : Logic::kAnd;
      if (pick(6) == 0)
        f.push_back(Group({random_cond(Logic::kAnd), random_cond(Logic::kOr)}, logic));
      else
        f.push_back(random_cond(logic));
    }
    std::string client = "c" + std::to_string(pick(20));
    auto s = subs_.Add(client, model_, f);
    ASSERT_TRUE(s.ok());
    all.emplace_back(client, s.value());
  }
  auto check = [&] {
    for (const Value& st : {statuses[0], statuses[1], statuses[2], kNull}) {
      for (const Value& n : {kNull, I(0), I(1), I(3)}) {
        for (const Value& r : {kNull, D(0.0), I(1), D(1.5), D(2.0)}) {
          for (const Value& b : {kNull, I(0), I(1)}) {
            Row row = MakeRow(st, n, r, b);
            std::set<std::string> want;
            for (const auto& [client, s] : all)
              if (Matches(*model_, s->filters, row)) want.insert(s->id);
            ASSERT_EQ(MatchIds(row), want) << "row " << Show(row);
          }
        }
      }
    }
  };
  check();
  for (size_t i = 0; i < all.size(); i += 3)
    ASSERT_TRUE(subs_.Remove(all[i].first, all[i].second->id).ok());
  std::vector<std::pair<std::string, std::shared_ptr<Subscription>>> left;
  for (size_t i = 0; i < all.size(); ++i)
    if (i % 3 != 0) left.push_back(all[i]);
  all.swap(left);
  check();
  EXPECT_EQ(subs_.size(), all.size());
}

TEST_F(SubscriptionsTest, ConcurrentAddRemoveAndMatchStayConsistent) {
  // Two threads churn subscriptions while two match; afterwards exactly the survivors remain.
  std::atomic<bool> stop{false};
  std::vector<std::thread> matchers;
  for (int t = 0; t < 2; ++t) {
    matchers.emplace_back([&] {
      while (!stop.load()) {
        for (const auto& s : subs_.Match(*model_, MakeRow(S("a"), I(1)))) {
          ASSERT_TRUE(Matches(*model_, s->filters, MakeRow(S("a"), I(1))));
        }
      }
    });
  }
  std::vector<std::thread> writers;
  for (int t = 0; t < 2; ++t) {
    writers.emplace_back([&, t] {
      std::string client = "w" + std::to_string(t);
      for (int i = 0; i < 2000; ++i) {
        auto s = subs_.Add(client, model_, {Cond(kStatus, Op::kEq, {S(i % 2 ? "a" : "b")})});
        ASSERT_TRUE(s.ok());
        if (i % 4 != 3) {
          ASSERT_TRUE(subs_.Remove(client, s.value()->id).ok());
        }
      }
    });
  }
  for (auto& w : writers) w.join();
  stop = true;
  for (auto& m : matchers) m.join();
  EXPECT_EQ(subs_.size(), 1000u);  // i % 4 == 3 survive: 500 per writer, all with status 'a'
  EXPECT_EQ(subs_.Match(*model_, MakeRow(S("a"))).size(), 1000u);
  EXPECT_TRUE(subs_.Match(*model_, MakeRow(S("b"))).empty());
}

}  // namespace
}  // namespace mqttspec::server

namespace mqttspec::server {
namespace {

// A subscription kept for another instance (server/cluster.h) is stored as RenderFilters and
// parsed back by the adopter with the protocol's FilterParser: the same filters — hook-added ones
// (a tenant's) included — must come back, or an adopted subscription would see other rows.
TEST(KeptSubscriptionFilters, RenderedFiltersParseBackToTheSameFilters) {
  registry::ModelPtr model = Things();
  const char* json = R"([
    {"column": "status", "operator": "starts_with", "value": "a%_\\"},
    {"logic_operator": "OR", "filters": [
      {"column": "n", "operator": "in", "value": [1, 2, 3]},
      {"column": "r", "operator": "between", "value": [0.5, 2.5], "logic_operator": "AND"},
      {"column": "ts", "operator": "gte", "value": "2026-01-01T00:00:00Z", "logic_operator": "OR"}
    ]},
    {"column": "b", "operator": "is_not_null"},
    {"column": "status", "operator": "neq", "value": "tenant-b"}])";
  protocol::ParseLimits limits;
  rapidjson::Document doc;
  doc.Parse(json);
  ASSERT_FALSE(doc.HasParseError());
  auto first = protocol::FilterParser(*model, limits).List(doc, 0);
  ASSERT_TRUE(first.ok()) << first.error().message;
  const std::string kept = protocol::RenderFilters(*model, first.value());
  rapidjson::Document again;
  again.Parse(kept.c_str());
  ASSERT_FALSE(again.HasParseError()) << kept;
  auto second = protocol::FilterParser(*model, limits).List(again, 0);
  ASSERT_TRUE(second.ok()) << second.error().message << "\n" << kept;
  EXPECT_EQ(protocol::RenderFilters(*model, second.value()), kept);
  std::mt19937 rng(7);
  const std::vector<Value> statuses = {S("a%_\\x"), S("abc"), S("tenant-b"), kNull};
  for (int i = 0; i < 500; ++i) {
    Row row = MakeRow(statuses[rng() % statuses.size()], rng() % 2 ? I(rng() % 5) : kNull,
                      rng() % 2 ? D((rng() % 40) / 10.0) : kNull, rng() % 2 ? B(true) : kNull,
                      rng() % 2 ? S("2026-06-01T00:00:00.000Z") : S("2025-06-01T00:00:00.000Z"));
    EXPECT_EQ(Matches(*model, first.value(), row), Matches(*model, second.value(), row));
  }
}

}  // namespace
}  // namespace mqttspec::server
