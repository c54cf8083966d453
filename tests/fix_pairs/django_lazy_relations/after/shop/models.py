from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=100)


class Tag(models.Model):
    label = models.CharField(max_length=50)


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    reviewer = models.ForeignKey(Customer, null=True, on_delete=models.SET_NULL, related_name="reviewed")
    tags = models.ManyToManyField(Tag)
    total = models.IntegerField()


class Line(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=40)


class Invoice(models.Model):
    order = models.OneToOneField(Order, on_delete=models.CASCADE)
    number = models.CharField(max_length=20)
