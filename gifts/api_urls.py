"""API routes of the gifts app, mounted at /api/v1/gifts/."""

from django.urls import path

from gifts import api

app_name = "gifts-api"
urlpatterns = [
    path("categories", api.CategoryListApi.as_view(), name="categories"),
    path("gifts", api.GiftListCreateApi.as_view(), name="gifts"),
    path("gifts/<int:gift_id>", api.GiftDetailApi.as_view(), name="gift"),
    path("gifts/<int:gift_id>/submit", api.GiftSubmitApi.as_view(), name="gift-submit"),
    path("listing-check", api.ListingCheckApi.as_view(), name="listing-check"),
    path("violations", api.ViolationListApi.as_view(), name="violations"),
    path("disputes", api.DisputeListCreateApi.as_view(), name="disputes"),
    path("disputes/<int:dispute_id>", api.DisputeDetailApi.as_view(), name="dispute"),
    path("orders", api.OrderUpsertApi.as_view(), name="orders"),
    path("shipments/<int:shipment_id>/shipped", api.ShipmentShippedApi.as_view(), name="shipment-shipped"),
    path(
        "shipments/<int:shipment_id>/agreed-ship-by",
        api.ShipmentAgreedShipByApi.as_view(),
        name="shipment-agreed-ship-by",
    ),
]
