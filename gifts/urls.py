"""HTML pages of the gifts app, mounted at /gifts/."""

from django.urls import path

from gifts import views

app_name = "gifts"
urlpatterns = [
    path("", views.gift_list, name="gift-list"),
    path("new/", views.gift_create, name="gift-create"),
    path("<int:gift_id>/", views.gift_detail, name="gift-detail"),
    path("<int:gift_id>/edit/", views.gift_edit, name="gift-edit"),
    path("<int:gift_id>/submit/", views.gift_submit, name="gift-submit"),
    path("<int:gift_id>/withdraw/", views.gift_withdraw, name="gift-withdraw"),
    path("qualifications/", views.qualification_list, name="qualifications"),
    path("documents/<str:kind>/<int:pk>/", views.document_file, name="document-file"),
    path("products/", views.product_list, name="products"),
    path("products/<int:product_id>/", views.product_detail, name="product-detail"),
    path("precheck/", views.precheck, name="precheck"),
    path("violations/", views.violation_list, name="violations"),
    path("disputes/", views.dispute_list, name="disputes"),
    path("disputes/<int:dispute_id>/", views.dispute_detail, name="dispute-detail"),
]
