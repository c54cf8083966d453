from django.urls import path

from . import views

urlpatterns = [
    path("orders/", views.orders),
    path("orders/joined/", views.orders_joined),
    path("orders/ids/", views.orders_by_id),
    path("orders/tags/", views.order_tags),
    path("orders/tags/prefetched/", views.order_tags_prefetched),
    path("orders/lines/", views.filtered_prefetch),
    path("orders/nested/", views.nested_paths),
    path("orders/prefetch-object/", views.prefetch_object),
    path("customers/", views.reverse_accessors),
    path("orders/invoices/", views.one_to_one_reverse),
    path("orders/every-key/", views.every_key),
    path("orders/<int:pk>/", views.single_order),
    path("literal/", views.literal_loop),
]
