from django.urls import path

from keyroll.django.views import ready

from . import views

urlpatterns = [
    path("ready", ready),
    path("login", views.login),
    path("whoami", views.whoami),
    path("reset-token", views.reset_token),
    path("reset-check", views.reset_check),
    path("message", views.message),
    path("messages", views.read_messages),
    path("signed", views.signed),
    path("unsigned", views.unsigned),
]
