"""Drives the admin console in headless Chromium through chromedriver (Selenium), one browser
session: sign in, settle the queued pair with a keyboard shortcut, resync a partner and watch it
finish, search a run's rejections, split a record off the merged entity, sign out. Screenshots of
each page at 1280 and 390 wide. Previews a new source before signing out.

argv: base URL, admin token, chromedriver path, chromium path, screenshot dir, partner id, and
the URL of a new source to preview (a directory with one charity the partners already list).
Exits non-zero (with the reason) when the console does not behave.
"""

import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from selenium.webdriver.support.ui import Select

base, token, driver_path, chromium, shots, partner, source = sys.argv[1:8]

options = webdriver.ChromeOptions()
options.binary_location = chromium
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-background-networking", "--disable-sync",
            "--disable-component-update", "--hide-scrollbars"):
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
wait = WebDriverWait(driver, 20)


def shoot(name):
    """The page at desktop and at phone width."""
    for width, label in ((1280, "desktop"), (390, "phone")):
        driver.set_window_size(width, 900)
        time.sleep(0.2)
        driver.save_screenshot(f"{shots}/{name}-{label}.png")
    driver.set_window_size(1280, 900)


def text(css):
    return driver.find_element(By.CSS_SELECTOR, css).text


try:
    driver.set_window_size(1280, 900)
    # Not signed in: the console sends the browser to the sign-in form, then back.
    driver.get(f"{base}/admin/console/review")
    wait.until(EC.presence_of_element_located((By.ID, "token")))
    assert "/admin/console/sign-in" in driver.current_url, driver.current_url
    shoot("sign-in")
    field = driver.find_element(By.ID, "token")
    field.send_keys(token)
    field.send_keys(Keys.ENTER)

    # The queued pair, side by side, agreement marked in words.
    wait.until(EC.presence_of_element_located((By.ID, "pair")))
    assert driver.current_url.endswith("/admin/console/review"), driver.current_url
    fields = text("#fields")
    assert "Hull Community Shop" in fields, fields
    assert "✓ agree" in fields, fields
    assert "✗ differ" in fields, fields
    assert text("#evidence").strip(), "evidence in words"
    assert "1 open pair" in text("#open-count"), text("#open-count")
    shoot("review")

    # Each side's entity page is linked; after Same the first one answers (or redirects) as the
    # merged entity.
    entity_url = driver.find_element(By.CSS_SELECTOR, "#clusters a").get_attribute("href")

    # "s" is the Same shortcut: the decision applies and the (now empty) queue loads.
    driver.find_element(By.TAG_NAME, "body").send_keys("s")
    wait.until(EC.presence_of_element_located((By.ID, "settled")))
    assert "same" in text("#settled"), text("#settled")
    assert "0 open pairs" in text("#open-count"), text("#open-count")

    # Partners: health, then one partner's page; resync and watch it finish.
    driver.find_element(By.LINK_TEXT, "Partners").click()
    wait.until(EC.presence_of_element_located((By.ID, "partners")))
    assert partner in text("#partners")
    shoot("partners")
    driver.find_element(By.CSS_SELECTOR, f"#partner-{partner} a").click()
    wait.until(EC.presence_of_element_located((By.ID, "resync")))
    before = len(driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr"))
    driver.find_element(By.ID, "resync").click()
    # The page polls while the sync runs and reloads itself when it has finished.
    deadline = time.time() + 30
    while True:
        rows = driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
        prog = driver.find_elements(By.ID, "progress")
        if len(rows) > before and prog and prog[0].text == "No sync running.":
            break
        assert time.time() < deadline, f"the resync did not finish on the page: {prog[0].text if prog else ''}"
        time.sleep(0.3)
    newest = driver.find_element(By.CSS_SELECTOR, "#runs tbody tr").text
    assert "admin" in newest and ("ok" in newest or "unchanged" in newest), newest
    shoot("partner")

    # The run's rejections, searched.
    driver.find_element(By.CSS_SELECTOR, "#runs tbody tr a").click()
    wait.until(EC.presence_of_element_located((By.ID, "rejections")))
    rejected = text("#rejections")
    assert "a9" in rejected, rejected
    box = driver.find_element(By.ID, "q")
    box.send_keys("no-such-reason-at-all")
    box.send_keys(Keys.ENTER)
    wait.until(EC.text_to_be_present_in_element((By.ID, "matched"), "0 of"))
    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys("a9")
    box.send_keys(Keys.ENTER)
    wait.until(EC.text_to_be_present_in_element((By.ID, "matched"), "1 of"))
    shoot("run")

    # The merged entity: its fields with their partners, both records, its history; split one
    # record off through the confirmation page.
    driver.get(entity_url)
    wait.until(EC.presence_of_element_located((By.ID, "members")))
    members = driver.find_elements(By.CSS_SELECTOR, "#members tbody tr")
    assert len(members) == 2, text("#members")
    merged = text("#merged")
    assert "Hull Community Shop" in merged and ("alpha" in merged or "beta" in merged), merged
    assert text("#history").strip(), "change history listed"
    shoot("entity")
    driver.find_element(By.CSS_SELECTOR, "#members a[aria-label*='beta']").click()
    wait.until(EC.presence_of_element_located((By.ID, "confirm-split")))
    assert "b1" in driver.find_element(By.TAG_NAME, "main").text
    shoot("split")
    driver.find_element(By.ID, "confirm-split").click()
    wait.until(EC.presence_of_element_located((By.ID, "done")))
    assert "Split beta record b1 off" in text("#done"), text("#done")
    rows = driver.find_elements(By.CSS_SELECTOR, "#members tbody tr")
    assert len(rows) == 1 and "alpha" in rows[0].text, text("#members")

    # Preview a new source: nothing is kept, the page says what would land and merge.
    driver.find_element(By.LINK_TEXT, "Preview a source").click()
    wait.until(EC.presence_of_element_located((By.ID, "preview-form")))
    driver.find_element(By.ID, "url").send_keys(source)
    Select(driver.find_element(By.ID, "kind")).select_by_value("organisations")
    Select(driver.find_element(By.ID, "format")).select_by_value("tributary-json")
    driver.find_element(By.ID, "preview-run").click()
    wait.until(EC.presence_of_element_located((By.ID, "preview-summary")))
    summary = text("#preview-summary")
    assert "2 would land" in summary and "1 would merge" in summary, summary
    assert "Nothing was saved" in summary, summary
    assert "Selby" in text("#preview-merges"), text("#preview-merges")
    shoot("preview")

    # Sign out: the session ends and the console asks to sign in again.
    driver.find_element(By.ID, "sign-out").click()
    wait.until(EC.presence_of_element_located((By.ID, "token")))
    driver.get(f"{base}/admin/console/partners")
    wait.until(EC.presence_of_element_located((By.ID, "token")))
    print("browser checks passed")
finally:
    driver.quit()
