"""The in-memory fakes pass their own contract suites, and keep what the suites cannot observe."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from carefront_sdk.adapters import AdapterContext
from carefront_sdk.errors import NotFound, Refused, Unavailable, WebhookRejected
from carefront_sdk.models import (
    Channel,
    CheckoutRequest,
    CoverageChange,
    CoverageRank,
    Message,
    Money,
    OffSessionCharge,
    PaymentPosting,
    PaymentStatus,
    SaveMethodRequest,
)
from carefront_sdk.testing import (
    ClearinghouseContract,
    ClearinghouseSample,
    EHRContract,
    EHRSample,
    FakeClearinghouse,
    FakeClock,
    FakeEHR,
    FakeGateway,
    FakeNotifier,
    GatewayContract,
    GatewaySample,
    NotifierContract,
    NotifierSample,
)


class TestFakeEHR(EHRContract):
    @pytest.fixture
    def ehr(self, adapter_context: AdapterContext) -> FakeEHR:
        return FakeEHR.seeded(clock=adapter_context.clock)

    @pytest.fixture
    def ehr_sample(self, ehr: FakeEHR) -> EHRSample:
        return ehr.sample


class TestFakeEHRInAnotherTimeZone(TestFakeEHR):
    @pytest.fixture
    def ehr(self, adapter_context: AdapterContext) -> FakeEHR:
        return FakeEHR.seeded(clock=adapter_context.clock, time_zone="America/Chicago")


class TestFakeClearinghouse(ClearinghouseContract):
    @pytest.fixture
    def clearinghouse(self, adapter_context: AdapterContext) -> FakeClearinghouse:
        return FakeClearinghouse.seeded(clock=adapter_context.clock)

    @pytest.fixture
    def clearinghouse_sample(self, clearinghouse: FakeClearinghouse) -> ClearinghouseSample:
        return clearinghouse.sample


class TestFakeGateway(GatewayContract):
    @pytest.fixture
    def gateway(self, adapter_context: AdapterContext) -> FakeGateway:
        return FakeGateway.seeded(clock=adapter_context.clock)

    @pytest.fixture
    def gateway_sample(self, gateway: FakeGateway) -> GatewaySample:
        return gateway.sample


class TestFakeNotifier(NotifierContract):
    @pytest.fixture
    def notifier(self, adapter_context: AdapterContext) -> FakeNotifier:
        return FakeNotifier.seeded(clock=adapter_context.clock)

    @pytest.fixture
    def notifier_sample(self, notifier: FakeNotifier) -> NotifierSample:
        return notifier.sample


class TestEmailOnlyNotifier(TestFakeNotifier):
    @pytest.fixture
    def notifier(self, adapter_context: AdapterContext) -> FakeNotifier:
        notifier = FakeNotifier.seeded(clock=adapter_context.clock)
        notifier.channels = frozenset({Channel.EMAIL})
        return notifier


# What the suites cannot see from outside an adapter, the fakes show in their state.


async def test_a_repeated_posting_is_recorded_once(carefront_clock: FakeClock) -> None:
    ehr = FakeEHR.seeded(clock=carefront_clock)
    posting = PaymentPosting("pat-1", "ACC1001", Money(2500), "pay_1", carefront_clock(), "card", "stmt-2")
    first = await ehr.post_payment(posting, "key-1")
    assert await ehr.post_payment(posting, "key-1") == first
    assert ehr.postings == [posting]
    assert (await ehr.read_statement("stmt-2")).summary.balance == Money(9500 - 2500)


async def test_a_refused_booking_is_refused_again_under_its_key() -> None:
    ehr = FakeEHR.seeded()
    slot = (await ehr.find_slots(ehr.sample.slot_query))[0]
    await ehr.book("pat-1", slot.id, "mine")
    with pytest.raises(Refused, match="slot_taken"):
        await ehr.book("pat-2", slot.id, "theirs")
    appointment = (await ehr.list_appointments("pat-1"))[0]
    await ehr.cancel(appointment.id, "changed my mind", "cancel-1")
    with pytest.raises(Refused, match="slot_taken"):
        await ehr.book("pat-2", slot.id, "theirs")


async def test_a_statement_that_does_not_add_up_is_refused() -> None:
    ehr = FakeEHR.seeded()
    statement = await ehr.read_statement("stmt-2")
    wrong = dataclasses.replace(statement, summary=dataclasses.replace(statement.summary, balance=Money(1)))
    with pytest.raises(ValueError, match="balance"):
        ehr.add_statement(wrong)


async def test_a_new_primary_replaces_the_old_one() -> None:
    ehr = FakeEHR.seeded()
    (old,) = await ehr.list_coverages("pat-1")
    change = CoverageChange(
        patient_id="pat-1",
        rank=CoverageRank.PRIMARY,
        payer_id="87726",
        payer_name="UnitedHealthcare",
        plan_name="Choice Plus",
        member_id="U999",
        subscriber_name="Alex Rivera",
        subscriber_birth_date=old.subscriber_birth_date,
    )
    new = await ehr.write_coverage(change, "new-primary")
    assert new is not None
    assert await ehr.list_coverages("pat-1") == [new]
    assert new.starts_on == ehr.clock().date()


async def test_a_fake_that_is_down_is_unavailable() -> None:
    ehr = FakeEHR.seeded()
    ehr.down = True
    assert not (await ehr.health()).ok
    with pytest.raises(Unavailable):
        await ehr.read_patient("pat-1")
    with pytest.raises(Unavailable):
        await ehr.book("pat-1", "slot", "key")


async def test_unknown_ids_in_a_list_raise_not_found() -> None:
    with pytest.raises(NotFound):
        await FakeEHR.seeded().list_statements("nobody")


async def test_a_completed_checkout_succeeds_and_can_save_the_card(carefront_clock: FakeClock) -> None:
    gateway = FakeGateway.seeded(clock=carefront_clock)
    request = CheckoutRequest(Money(5000), "Statement SC7Q4M2", "cus_2", "https://p/r", "https://p/c", save_method=True)
    checkout = await gateway.start_checkout(request, "checkout-1")
    payment = gateway.complete_checkout(checkout.reference)
    assert (await gateway.read_payment(checkout.reference)) == payment
    assert payment.status is PaymentStatus.SUCCEEDED
    assert payment.saved_method_reference is not None
    method = await gateway.read_saved_method(payment.saved_method_reference)
    assert method.customer_reference == "cus_2"


async def test_a_saved_method_is_charged_only_for_its_customer() -> None:
    gateway = FakeGateway.seeded()
    setup = await gateway.start_saving_method(SaveMethodRequest("cus_2", "https://p/r", "https://p/c"), "save-1")
    method = gateway.complete_saving_method(setup.reference)
    with pytest.raises(Refused, match="method_not_owned"):
        await gateway.charge_saved_method(OffSessionCharge(method.reference, "cus_1", Money(100), "x"), "charge-1")


async def test_a_webhook_round_trips_and_expires(carefront_clock: FakeClock) -> None:
    gateway = FakeGateway.seeded(clock=carefront_clock)
    payment = await gateway.charge_saved_method(OffSessionCharge("pm_visa", "cus_1", Money(700), "x"), "charge-1")
    body = gateway.event_body("payment.succeeded", payment=payment)
    headers = gateway.sign(body)
    event = await gateway.parse_webhook(body, {name.upper(): value for name, value in headers.items()})
    assert (event.kind, event.payment) == ("payment.succeeded", payment)
    carefront_clock.advance(timedelta(minutes=6))
    with pytest.raises(WebhookRejected, match="too old"):
        await gateway.parse_webhook(body, headers)


async def test_a_repeated_send_is_delivered_once(carefront_clock: FakeClock) -> None:
    notifier = FakeNotifier.seeded(clock=carefront_clock)
    message = Message(Channel.SMS, "+15555550101", "Your statement is ready.")
    first = await notifier.send(message, "reminder-1")
    assert await notifier.send(message, "reminder-1") == first
    assert notifier.sent_to("+15555550101") == [message]
    assert first.accepted_at == carefront_clock()


async def test_a_bounced_address_is_refused() -> None:
    notifier = FakeNotifier.seeded()
    notifier.bounced.add("gone@example.org")
    with pytest.raises(Refused, match="invalid_address"):
        await notifier.send(Message(Channel.EMAIL, "gone@example.org", "Hello"), "k")


async def test_an_empty_fake_has_no_sample() -> None:
    with pytest.raises(RuntimeError, match="seeded"):
        _ = FakeEHR().sample
