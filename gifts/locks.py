"""The only place that takes row locks in the gifts app. Several rows are locked in primary-key
order so two transactions never wait on each other in opposite orders; rows of different
tables in one order too:

    a shop's licences (qualifications) -> products -> a category -> its gifts

- Licences first: a revocation (``qualification_revoke``) holds the licence and the shop's other
  licences of its type FOR UPDATE (``lock_qualification_with_its_siblings``) and then suspends
  gifts (products, category, gift), and an approval (``qualification_approve``) holds
  the new licence and then reinstates gifts (category, gift). Everything that decides a gift's
  standing from the shop's licences (GIFT-2.3) takes them FOR SHARE before anything else
  (``lock_gift_with_its_licences``, ``lock_gift_with_its_licences_and_products``, and a category
  change through ``lock_category_with_its_products(licences_of_type=...)``), so it either waits
  for the revocation or approval and reads its result, or the other side waits for it.
- Products before the gift: attaching locks the licences the gift needs (FOR SHARE, as above), the
  product, then the gift (``lock_product_with_gift_and_its_licences``).
- The category before the gift: ``lock_gift`` takes the category row first, so a category change
  (holding the category, then suspending or reinstating its gifts) and any gift lock queue. An
  edit moving a gift into another category takes both categories (pk order), then the gift.

Orders, disputes, shipments and document requests are not locked together with these.
"""

from django.db import transaction
from django.db.models import Q

from gifts.models import (
    DocumentRequest,
    Gift,
    GiftCategory,
    GiftDispute,
    GiftShipment,
    Order,
    Product,
    ProductGift,
    Qualification,
)


class _CategoryMoved(Exception):
    """The gift moved to another category between reading its category and locking it."""


def _require_transaction() -> None:
    # The savepoints below would otherwise open (and at once commit) a transaction of their own,
    # and the locks would be gone before the caller acts on what it read.
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError("row locks are taken inside a transaction")


def lock_gift(gift_id: int, *, moving_to: int | None = None) -> Gift:
    # Serialises state changes of one gift: a reviewer's approval racing the licence job's
    # suspension (or the shop's withdrawal) must see each other's result. The category row is
    # taken on purpose (see ``lock_category_with_its_products``), and before the gift: a category
    # change locks the category and then suspends or reinstates its gifts (``_category_enforce``),
    # so a gift lock that held the gift while waiting for the category would deadlock with it.
    # The shop row is not taken, so locks on two gifts of one shop do not queue behind each other.
    # ``moving_to``: an edit moving the gift into that category takes it too, with the gift's own
    # (pk order) and before the gift. Taken after the gift, it would wait while holding the gift and
    # its old category, and two edits moving gifts each into the other's category would deadlock;
    # and a staff change of the new category queues with the edit like one of the old.
    _require_transaction()
    while True:
        category_id = Gift.objects.filter(pk=gift_id).values_list("category_id", flat=True).get()
        try:
            # A savepoint, so a retry lets go of a category the gift no longer belongs to.
            with transaction.atomic():
                ids = sorted({category_id} | ({moving_to} if moving_to is not None else set()))
                categories = GiftCategory.objects.select_for_update().filter(pk__in=ids).order_by("pk")
                category = next(c for c in categories if c.pk == category_id)
                gift = Gift.objects.select_for_update(of=("self",)).select_related("shop").get(pk=gift_id)
                if gift.category_id != category_id:
                    raise _CategoryMoved
        except _CategoryMoved:
            continue  # its category was changed while we waited: lock the new one first
        gift.category = category
        return gift


def _lock_licences(shop_ids, licence_type: str) -> None:
    """FOR SHARE, pk order: the shops' licences of ``licence_type`` that are approved, or pending
    (an approval in progress holds one FOR UPDATE, so whoever checks the licence waits for it and
    then sees it valid). A revocation or an approval of one of them waits until the holder commits.
    A licence uploaded after the lock is not covered: its review would have to start and commit
    within the holder's transaction (milliseconds; a review follows an upload by minutes)."""
    licences = (
        Qualification.objects.filter(
            shop_id__in=shop_ids,
            licence_type=licence_type,
            state__in=(Qualification.State.APPROVED, Qualification.State.PENDING),
        )
        .order_by("pk")
        .values_list("pk")
    )
    sql, params = licences.query.sql_with_params()
    with transaction.get_connection().cursor() as cursor:
        # Django's select_for_update has no FOR SHARE; FOR UPDATE would make two transactions
        # relying on one licence (approvals of two gifts, the job and a reviewer) wait for each other.
        cursor.execute(f"{sql} FOR SHARE", params)


def _lock_gift_with_its_licences(gift_id: int, *, products: bool, product_id: int | None = None) -> Gift:
    _require_transaction()
    while True:
        shop_id, *needs = (
            Gift.objects.filter(pk=gift_id)
            .values_list("shop_id", "category__licence_required", "category__licence_type")
            .get()
        )
        try:
            with transaction.atomic():  # a savepoint, as in ``lock_gift``
                if needs[0]:
                    _lock_licences([shop_id], needs[1])
                if product_id is not None:
                    lock_product(product_id)
                gift = lock_gift_with_its_products(gift_id) if products else lock_gift(gift_id)
                if [gift.category.licence_required, gift.category.licence_type] != needs:
                    raise _CategoryMoved
        except _CategoryMoved:
            continue  # the licence the gift needs changed while we waited: lock the new one first
        return gift


def lock_gift_with_its_licences(gift_id: int) -> Gift:
    """The shop's licences of the type the gift's category needs (``_lock_licences``), then the gift
    (``lock_gift``). An approval relies on the shop holding such a licence (GIFT-2.3); a revocation
    locks the licence (FOR UPDATE) before it suspends the approved gifts that needed it. So the two
    queue: either the approval waits for the revocation and sees the licence revoked, or the
    revocation waits for the approval and then finds the gift approved. A category change
    reinstating a suspended gift relies on the licence the same way."""
    return _lock_gift_with_its_licences(gift_id, products=False)


def lock_gift_with_its_licences_and_products(gift_id: int) -> Gift:
    """As ``lock_gift_with_its_licences``, with the gift's products between the licences and the
    gift (``lock_gift_with_its_products``): a suspension re-checks the licence under these locks
    and detaches the gift from its products. A licence approved meanwhile either commits before
    the check (which then sees it valid) or waits for the suspension, and then reinstates the gift."""
    return _lock_gift_with_its_licences(gift_id, products=True)


def lock_product_with_gift_and_its_licences(product_id: int, gift_id: int) -> tuple[Product, Gift]:
    """Attaching: the shop's licences of the type the gift's category needs (``_lock_licences``), the
    product, then the gift (``lock_gift``). The attach relies on the shop holding such a licence
    (GIFT-2.3) as an approval does, so a revocation at the same moment queues with it: either the
    attach waits and is refused, or the revocation waits and then suspends the attached gift and
    takes it off the product (whose link it now sees, so it locks that product too)."""
    gift = _lock_gift_with_its_licences(gift_id, products=False, product_id=product_id)
    return lock_product(product_id), gift  # held already: this only reads it


def lock_product(product_id: int) -> Product:
    # Attaching races the gift's removal; the product is locked first, then the gift.
    return Product.objects.select_for_update().get(pk=product_id)


def lock_gift_with_its_products(gift_id: int) -> Gift:
    """The products a gift is attached to (pk order), then the gift: the order attaching takes
    (product, then the gift's key), so removing a gift cannot deadlock with an attach."""
    _lock_products(ProductGift.objects.filter(gift_id=gift_id))
    return lock_gift(gift_id)


def _lock_products(links) -> None:
    """The products of ``links`` (a ``ProductGift`` queryset), in pk order."""
    product_ids = links.order_by("product_id").values_list("product_id")
    list(Product.objects.select_for_update().filter(pk__in=product_ids).order_by("pk").values_list("pk"))


def lock_category_with_its_products(category_id: int, *, licences_of_type: str = "") -> GiftCategory:
    """The products carrying a gift of the category (pk order), then the category. Attaching a
    gift locks its product and then the gift, whose lock takes its category row first (see
    ``lock_gift``): a staff change of the category that detaches or suspends its gifts
    queues behind an attach, or an attach behind it, instead of deadlocking.

    With ``licences_of_type`` (the licence the category needs after the change), first the
    licences of that type of the shops whose gifts in the category are approved or suspended
    (``_lock_licences``): the change suspends or reinstates those gifts by whether their shop holds
    one (GIFT-2.3), so a revocation or approval of such a licence queues with it. Taken before the
    products and the category, the order a revocation takes them in (licence, then the gifts it
    suspends); when a shop's gift entered those states meanwhile, it starts again."""
    _require_transaction()
    while True:
        shops = set()
        if licences_of_type:
            shops = _shops_with_standing_gifts(category_id)
        try:
            with transaction.atomic():  # a savepoint, so a retry lets go of what it took
                if shops:
                    _lock_licences(sorted(shops), licences_of_type)
                _lock_products(ProductGift.objects.filter(gift__category_id=category_id))
                category = GiftCategory.objects.select_for_update().get(pk=category_id)
                if licences_of_type and not _shops_with_standing_gifts(category_id) <= shops:
                    raise _CategoryMoved
        except _CategoryMoved:
            continue  # another shop's gift was approved in the category: lock its licences first
        return category


def _shops_with_standing_gifts(category_id: int) -> set[int]:
    return set(
        Gift.objects.filter(
            category_id=category_id, state__in=(Gift.State.APPROVED, Gift.State.SUSPENDED)
        ).values_list("shop_id", flat=True)
    )


def lock_qualification(qualification_id: int) -> Qualification:
    return Qualification.objects.select_for_update().get(pk=qualification_id)


def lock_qualification_with_its_siblings(qualification_id: int) -> Qualification:
    """The licence, with the shop's other approved or pending licences of its type, FOR UPDATE in pk
    order. A revocation suspends the gifts that needed the licence unless the shop holds another valid
    one of the type (GIFT-2.3): it relies on those others as an approval relies on its licence. Two
    revocations of a shop's two licences, each holding only its own, would each read the other still
    approved (not yet committed) and neither would suspend. Holding all of them, the second waits for
    the first and then reads its licence revoked. They are the rows everyone deciding a gift's standing
    takes first (``_lock_licences``, FOR SHARE, pk order), so this adds no new order; the shop row is
    not locked, as no gifts lock takes it (see ``lock_gift``). A licence's shop and type never change
    after upload, so they are read unlocked first."""
    _require_transaction()
    shop_id, licence_type = (
        Qualification.objects.filter(pk=qualification_id).values_list("shop_id", "licence_type").get()
    )
    siblings = Q(
        shop_id=shop_id,
        licence_type=licence_type,
        state__in=(Qualification.State.APPROVED, Qualification.State.PENDING),
    )
    locked = (
        Qualification.objects.select_for_update().filter(Q(pk=qualification_id) | siblings).order_by("pk")
    )
    return next(q for q in locked if q.pk == qualification_id)


def lock_document_request(request_id: int) -> DocumentRequest:
    return DocumentRequest.objects.select_for_update().get(pk=request_id)


def lock_order(order_id: int) -> Order:
    # Two disputes about one gift on one order ("not delivered" and "not as described") decided at
    # once must see each other's compensation (GIFT-5.3); the order is locked before the dispute.
    return Order.objects.select_for_update().get(pk=order_id)


def lock_dispute(dispute_id: int) -> GiftDispute:
    # The merchant's response racing the reviewer's decision: whoever locks second sees the
    # other's state and is refused if the transition is no longer allowed.
    return GiftDispute.objects.select_for_update().get(pk=dispute_id)


def lock_shipment(shipment_id: int) -> GiftShipment:
    return GiftShipment.objects.select_for_update().select_related("order").get(pk=shipment_id)
