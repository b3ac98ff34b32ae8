from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from environ import Env


class Command(BaseCommand):
    help = "Create (or reset) the demo admin user and print its login."

    def handle(self, *args, **options):
        env = Env()
        username = env.str("OMS_ADMIN_USERNAME", default="admin")
        password = env.str("OMS_ADMIN_PASSWORD", default="oms-admin-demo")
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"email": f"{username}@localhost"}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        verb = "created" if created else "updated"
        self.stdout.write(f"Admin user {verb}. Log in at http://127.0.0.1:8000/admin/")
        self.stdout.write(f"    username: {username}")
        self.stdout.write(f"    password: {password}")
