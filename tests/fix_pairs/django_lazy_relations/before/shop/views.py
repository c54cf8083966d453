from django.db.models import Prefetch
from django.http import JsonResponse

from .models import Customer, Order


def orders(request):
    rows = []
    for order in Order.objects.filter(total__gt=0)[:50]:
        rows.append({"customer": order.customer.name})
    return JsonResponse({"orders": rows})


def orders_joined(request):
    # select_related loads the customer in the same query.
    qs = Order.objects.select_related("customer").filter(total__gt=0)[:50]
    return JsonResponse({"orders": [o.customer.name for o in qs]})


def orders_by_id(request):
    # The foreign key's own column is on the row already.
    return JsonResponse({"ids": [o.customer_id for o in Order.objects.all()[:50]]})


def order_tags(request):
    out = {}
    for order in Order.objects.all()[:50]:
        out[order.pk] = [t.label for t in order.tags.all()]
    return JsonResponse(out)


def order_tags_prefetched(request):
    out = {}
    for order in Order.objects.prefetch_related("tags")[:50]:
        out[order.pk] = [t.label for t in order.tags.all()]
        out[order.pk].append(order.tags.count())
    return JsonResponse(out)


def filtered_prefetch(request):
    out = {}
    for order in Order.objects.prefetch_related("lines")[:50]:
        # A new filter on a prefetched relation is a new query per row.
        out[order.pk] = list(order.lines.filter(sku__startswith="A"))
    return JsonResponse(out)


def nested_paths(request):
    # "lines__order" prefetches lines; "reviewer" joins the reviewer.
    qs = Order.objects.select_related("reviewer").prefetch_related("lines__order")[:50]
    return JsonResponse({o.pk: [o.reviewer.name, len(o.lines.all())] for o in qs})


def prefetch_object(request):
    qs = Order.objects.prefetch_related(Prefetch("tags", to_attr="tag_list"))[:50]
    return JsonResponse({o.pk: [t.label for t in o.tag_list] + [o.tags.count()] for o in qs})


def reverse_accessors(request):
    out = {}
    for customer in Customer.objects.all()[:20]:
        out[customer.pk] = [o.total for o in customer.order_set.all()]
        out[customer.pk] += [o.total for o in customer.reviewed.all()]
    return JsonResponse(out)


def one_to_one_reverse(request):
    return JsonResponse({o.pk: o.invoice.number for o in Order.objects.all()[:20]})


def every_key(request):
    qs = Order.objects.select_related()[:50]
    return JsonResponse({o.pk: o.customer.name for o in qs})


def single_order(request, pk):
    order = Order.objects.get(pk=pk)
    # One object, not a loop over rows.
    return JsonResponse({"customer": order.customer.name, "tags": [t.label for t in order.tags.all()]})


def literal_loop(request):
    # A loop over literals: not rows of a queryset.
    return JsonResponse({name: len(name) for name in ("a", "b")})


def merged(request):
    # The missing relation joins the select_related call already there.
    qs = Order.objects.select_related("reviewer").filter(total__gt=0)[:50]
    return JsonResponse({o.pk: [o.reviewer.name, o.customer.name] for o in qs})


def built_elsewhere(queryset):
    # The queryset comes from the caller: its model is unknown here, so nothing is reported.
    return [o.customer.name for o in queryset.filter(total__gt=0)]
