"""How the admin writes dates and times for the desk (Django has no en_IN formats of its own):
24-hour IST times to the second, as order timelines need them."""

DATE_FORMAT = "d M Y"
TIME_FORMAT = "H:i:s"
DATETIME_FORMAT = "d M Y, H:i:s"
SHORT_DATE_FORMAT = "d/m/Y"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
MONTH_DAY_FORMAT = "j F"
YEAR_MONTH_FORMAT = "F Y"
FIRST_DAY_OF_WEEK = 1  # Monday
